"""`openai:MODEL` through the real openai client against a local server speaking the OpenAI wire
protocol: request mapping, streaming usage and timing, cost, bad input, and keys that never leak."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from evalboard.errors import UserError
from evalboard.models.adapters.base import Capabilities, known_schemes
from evalboard.models.adapters.openai_api import OpenAIAdapter, openai_request
from evalboard.requests import GenerateRequest, GenerationParams
from servers import Fault
from servers.fixtures import KEYS, generate, make_adapter, make_server

KEY = KEYS["openai"]


@pytest.fixture
def server():
    with make_server("openai") as srv:
        yield srv


def test_registered_with_chat_only_capabilities(server, monkeypatch):
    assert "openai" in known_schemes()
    adapter = make_adapter("openai", server, monkeypatch)
    assert isinstance(adapter, OpenAIAdapter)
    assert adapter.capabilities == Capabilities(loglikelihood=False, generate=True, chat=True)
    with pytest.raises(UserError, match="loglikelihood"):
        adapter.loglikelihood([], lambda i, r: None)


def test_plain_prompt_and_conversation_map_to_messages(server, monkeypatch):
    adapter = make_adapter("openai", server, monkeypatch)
    conversation = (
        ("system", "Answer briefly."),
        ("user", "2+2?"),
        ("assistant", "4"),
        ("user", "3+3?"),
    )
    params = GenerationParams(max_new_tokens=7, temperature=0.5, top_p=0.9, stop=("\n",))
    texts = [
        r.text
        for r in generate(
            adapter, [GenerateRequest("Hello there"), GenerateRequest(conversation, params)]
        )
    ]
    assert texts == ["echo: Hello there", "echo: 3+3?"]
    plain, chat = (e.body for e in server.log if e.key != "Reply with OK.")
    assert plain["messages"] == [{"role": "user", "content": "Hello there"}]
    assert plain["temperature"] == 0.0 and "top_p" not in plain and "stop" not in plain
    assert plain["stream"] is True and plain["stream_options"] == {"include_usage": True}
    assert chat["messages"] == [{"role": r, "content": c} for r, c in conversation]
    assert (chat["max_completion_tokens"], chat["temperature"], chat["top_p"], chat["stop"]) == (
        7,
        0.5,
        0.9,
        ["\n"],
    )


def test_max_tokens_and_stop_sequences(server, monkeypatch):
    adapter = make_adapter("openai", server, monkeypatch)
    stops = ("s1", "s2", "s3", "s4", " five")  # the API takes 4; the fifth is applied client-side
    requests = [
        GenerateRequest("one two three four five six", GenerationParams(max_new_tokens=3)),
        GenerateRequest("one two three four five six", GenerationParams(stop=stops)),
    ]
    short, stopped = generate(adapter, requests)
    assert short.text == "echo: one two" and short.usage.output_tokens == 3
    assert stopped.text == "echo: one two three four"
    assert server.log[-1].body["stop"] == ["s1", "s2", "s3", "s4"]


def test_streaming_measures_time_to_first_token_and_usage(server, monkeypatch):
    adapter = make_adapter("openai", server, monkeypatch)
    adapter.check()
    server.latency_s = 0.2
    server.piece_delay_s = 0.05
    (response,) = generate(adapter, [GenerateRequest("alpha beta gamma delta")])
    usage = response.usage
    assert usage.time_to_first_token_s is not None and 0.2 <= usage.time_to_first_token_s < 0.4
    assert usage.latency_s >= usage.time_to_first_token_s + 4 * 0.05  # 5 tokens, 4 gaps
    assert (usage.input_tokens, usage.output_tokens) == (4, 5)  # as the server counted them
    # gpt-4o-mini: $0.15 / $0.60 per 1M tokens (built-in table)
    assert usage.cost_usd == pytest.approx((4 * 0.15 + 5 * 0.60) / 1e6)
    summary = adapter.usage_summary()
    assert summary["cost_usd"] == pytest.approx(usage.cost_usd, abs=1e-6)
    assert summary["input_tokens"] == 4 and summary["output_tokens"] == 5


def test_unknown_price_is_none_not_a_guess(monkeypatch):
    with make_server("openai", models=("my-finetune",)) as srv:
        adapter = make_adapter("openai", srv, monkeypatch, model="my-finetune")
        (response,) = generate(adapter, [GenerateRequest("hi")])
        assert response.usage.cost_usd == 0.0
        assert adapter.usage_summary()["cost_usd"] is None


def test_prices_file_overrides(server, monkeypatch, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"as_of": "2030-01-01", "openai": {"gpt-4o-mini": {"input": 1e6, "output": 0}}})
    )
    monkeypatch.setenv("EVALBOARD_PRICES", str(prices))
    adapter = make_adapter("openai", server, monkeypatch)
    (response,) = generate(adapter, [GenerateRequest("a b c")])
    assert response.usage.cost_usd == pytest.approx(3.0)  # 3 input tokens at $1 each


def test_fingerprint_and_describe(server, monkeypatch):
    adapter = make_adapter("openai", server, monkeypatch)
    assert adapter.fingerprint() == {
        "adapter": "openai",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "api_host": f"127.0.0.1:{server.port}",
    }
    facts = adapter.describe()
    assert facts["open_weights"] is False and facts["provider"] == "OpenAI"


def test_base_url_from_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    from evalboard.models.adapters.base import load_adapter

    adapter = load_adapter("openai:gpt-4o-mini")
    assert adapter.api_host == f"127.0.0.1:{server.port}"
    assert generate(adapter, [GenerateRequest("x")])[0].text == "echo: x"


def test_models_that_refuse_sampling_parameters(server, monkeypatch, caplog):
    """Reasoning models refuse temperature: the preflight notices, the run goes on without it."""
    server.reject_params = {"temperature", "top_p"}
    adapter = make_adapter("openai", server, monkeypatch)
    with caplog.at_level(logging.WARNING):
        (response,) = generate(adapter, [GenerateRequest("hi")])
    assert response.text == "echo: hi"
    assert "temperature" not in server.log[-1].body
    assert adapter.describe()["sampling"].startswith("omitted")
    assert "refuses temperature" in caplog.text


# ----------------------------------------------------------------------------- bad input


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_key(server, monkeypatch):
    adapter = make_adapter("openai", server, monkeypatch)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(UserError) as exc:
        generate(adapter, [GenerateRequest("x")])
    assert "OPENAI_API_KEY" in one_line(exc)
    assert server.count() == 0  # nothing was sent


def test_unreachable_url(monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = make_adapter("openai", None, monkeypatch, url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(UserError) as exc:
        adapter.check()
    message = one_line(exc)
    assert (
        f"127.0.0.1:{port}" in message
        and "connection" in message.lower()
        and "OPENAI_BASE_URL" in message
    )


def test_unknown_model(server, monkeypatch):
    adapter = make_adapter("openai", server, monkeypatch, model="gpt-nonexistent")
    with pytest.raises(UserError) as exc:
        generate(adapter, [GenerateRequest("x")])
    message = one_line(exc)
    assert "HTTP 404" in message and "gpt-nonexistent" in message


def test_bad_spec_options(server, monkeypatch):
    with pytest.raises(UserError, match="unknown option"):
        make_adapter("openai", server, monkeypatch, colour="blue")
    with pytest.raises(UserError, match="not an http"):
        make_adapter("openai", None, monkeypatch, url="ftp://example.com")


def test_keys_never_leak(server, monkeypatch, caplog):
    server.echo_key_in_errors = True
    adapter = make_adapter("openai", server, monkeypatch)
    texts = [json.dumps(adapter.fingerprint()), json.dumps(adapter.describe())]

    # A per-item error whose server message quotes the key.
    adapter.check()
    server.script("leaky", [Fault.http(400, message=f"bad request from {KEY}")])
    with caplog.at_level(logging.DEBUG):
        (failed,) = generate(adapter, [GenerateRequest("leaky")])
    assert (
        failed.error == "failed: HTTP 400: bad request from [redacted]"
    )  # the server did quote it
    texts += [failed.error, json.dumps(adapter.usage_summary()), json.dumps(failed.to_json())]

    # A refused key: the server quotes what it got (wrong key, then the right one masked).
    for wrong in ("sk-wrong-SECRETwrongkey-123456", KEY[:-1]):
        fresh = make_adapter("openai", server, monkeypatch)
        monkeypatch.setenv("OPENAI_API_KEY", wrong)  # read when the first request goes out
        with pytest.raises(UserError) as exc:
            fresh.check()
        texts.append(one_line(exc))
        assert (
            "HTTP 401" in texts[-1] and "OPENAI_API_KEY" in texts[-1] and "[redacted]" in texts[-1]
        )
    texts.append(caplog.text)
    for text in texts:
        assert "SECRET" not in text, text


def test_openai_request_shape_is_plain_data():
    body = openai_request(
        "m", GenerateRequest("hi", GenerationParams(max_new_tokens=5)), sampling=False
    )
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 5,
    }
