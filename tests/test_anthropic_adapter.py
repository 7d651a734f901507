"""`anthropic:MODEL` through the real anthropic client against a local server speaking the
Messages API: system prompts, sampling parameters, the event stream, bad input, no key leaks."""

from __future__ import annotations

import json
import socket

import pytest
from evalboard.errors import UserError
from evalboard.models.adapters.anthropic_api import AnthropicAdapter, anthropic_request
from evalboard.models.adapters.base import Capabilities, load_adapter
from evalboard.requests import GenerateRequest, GenerationParams
from servers import Fault
from servers.fixtures import KEYS, MODELS, generate, make_adapter, make_server

KEY = KEYS["anthropic"]


@pytest.fixture
def server():
    with make_server("anthropic") as srv:
        yield srv


def test_registered_with_chat_only_capabilities(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch)
    assert isinstance(adapter, AnthropicAdapter)
    assert adapter.capabilities == Capabilities(loglikelihood=False, generate=True, chat=True)
    assert adapter.fingerprint() == {
        "adapter": "anthropic",
        "provider": "anthropic",
        "model": MODELS["anthropic"],
        "api_host": f"127.0.0.1:{server.port}",
    }
    assert (
        adapter.describe()["provider"] == "Anthropic"
        and adapter.describe()["open_weights"] is False
    )


def test_system_messages_go_to_the_system_parameter(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch)
    conversation = (
        ("system", "Be terse."),
        ("developer", "No markdown."),
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Italy?"),
    )
    params = GenerationParams(max_new_tokens=9, temperature=0.7, top_p=0.8, top_k=40, stop=("END",))
    responses = generate(adapter, [GenerateRequest("Hello"), GenerateRequest(conversation, params)])
    assert [r.text for r in responses] == ["echo: Hello", "echo: And of Italy?"]
    plain, chat = (e.body for e in server.log if e.key != "Reply with OK.")
    assert plain == {
        "model": MODELS["anthropic"],
        "max_tokens": 256,
        "stream": True,
        "temperature": 0.0,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    assert chat["system"] == "Be terse.\n\nNo markdown."
    assert chat["messages"] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    assert (
        chat["max_tokens"],
        chat["temperature"],
        chat["top_p"],
        chat["top_k"],
        chat["stop_sequences"],
    ) == (9, 0.7, 0.8, 40, ["END"])


def test_stop_sequences_and_max_tokens(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch)
    short, stopped = generate(
        adapter,
        [
            GenerateRequest("a b c d e", GenerationParams(max_new_tokens=2)),
            GenerateRequest("a b c d e", GenerationParams(stop=(" d",))),
        ],
    )
    assert short.text == "echo: a" and short.usage.output_tokens == 2
    assert stopped.text == "echo: a b c"


def test_stream_timing_usage_and_cost(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch)
    adapter.check()
    server.latency_s = 0.2
    server.piece_delay_s = 0.05
    (response,) = generate(adapter, [GenerateRequest((("system", "s"), ("user", "one two three")))])
    usage = response.usage
    assert 0.2 <= usage.time_to_first_token_s < 0.4
    assert usage.latency_s >= usage.time_to_first_token_s + 3 * 0.05
    assert (usage.input_tokens, usage.output_tokens) == (4, 4)  # system + user; "echo:" + 3 words
    # claude-haiku-4-5 (dated snapshot priced as its alias): $1 / $5 per 1M tokens
    assert usage.cost_usd == pytest.approx((4 * 1 + 4 * 5) / 1e6)


def test_a_prompt_of_only_system_messages_fails_that_item(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch)
    bad, good = generate(
        adapter, [GenerateRequest((("system", "only this"),)), GenerateRequest("ok")]
    )
    assert "needs a user turn" in bad.error and good.text == "echo: ok"


def test_models_that_refuse_sampling_parameters(server, monkeypatch):
    server.reject_params = {"temperature"}
    adapter = make_adapter("anthropic", server, monkeypatch)
    (response,) = generate(adapter, [GenerateRequest("hi", GenerationParams(temperature=0.0))])
    assert response.text == "echo: hi" and "temperature" not in server.log[-1].body
    assert adapter.describe()["sampling"].startswith("omitted")


def test_anthropic_request_puts_sampling_in_extra_body():
    body = anthropic_request(
        "m", GenerateRequest("hi", GenerationParams(max_new_tokens=3, top_k=5))
    )
    assert body["extra_body"] == {"temperature": 0.0, "top_k": 5}
    assert "extra_body" not in anthropic_request("m", GenerateRequest("hi"), sampling=False)


# ----------------------------------------------------------------------------- bad input


def test_missing_key(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(UserError, match="ANTHROPIC_API_KEY is not set") as exc:
        adapter.check()
    assert "\n" not in str(exc.value) and server.count() == 0


def test_unreachable_url(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = make_adapter("anthropic", None, monkeypatch, url=f"http://127.0.0.1:{port}")
    with pytest.raises(UserError, match="ANTHROPIC_BASE_URL") as exc:
        generate(adapter, [GenerateRequest("x")])
    assert "\n" not in str(exc.value) and f"127.0.0.1:{port}" in str(exc.value)


def test_unknown_model(server, monkeypatch):
    adapter = make_adapter("anthropic", server, monkeypatch, model="claude-nonexistent")
    with pytest.raises(UserError, match="HTTP 404.*claude-nonexistent") as exc:
        adapter.check()
    assert "\n" not in str(exc.value)


def test_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.root_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    adapter = load_adapter(f"anthropic:{MODELS['anthropic']}")
    assert generate(adapter, [GenerateRequest("x")])[0].text == "echo: x"


def test_keys_never_leak(server, monkeypatch, caplog):
    server.echo_key_in_errors = True
    adapter = make_adapter("anthropic", server, monkeypatch)
    adapter.check()
    server.script("leaky", [Fault.http(403, message=f"key {KEY} lacks permission")])
    with pytest.raises(UserError) as refused:
        adapter.generate([GenerateRequest("leaky")], lambda i, r: None)
    texts = [
        str(refused.value),
        json.dumps(adapter.fingerprint()),
        json.dumps(adapter.describe()),
        json.dumps(adapter.usage_summary()),
    ]
    assert "[redacted]" in texts[0]
    wrong = "sk-ant-wrong-SECRETwrong-987654321"
    fresh = make_adapter("anthropic", server, monkeypatch)
    monkeypatch.setenv("ANTHROPIC_API_KEY", wrong)
    with pytest.raises(UserError) as exc:
        fresh.check()
    texts += [str(exc.value), caplog.text]
    assert "HTTP 401" in texts[-2] and "ANTHROPIC_API_KEY" in texts[-2]
    for text in texts:
        assert "SECRET" not in text, text
