"""`openai-compatible:` claims loglikelihoods only when it has the tokenizer that scoring them needs
(the choices are cut into tokens here), so `--formulation auto` asks a server without one for a
letter instead of failing at request time. Against the local OpenAI-protocol server."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pytest
from evalboard.errors import UserError
from evalboard.models.adapters.base import Capabilities, load_adapter
from servers.fixtures import KEYS, MODELS, adapters_closed_after_test, make_server  # noqa: F401 (fixture)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEYS["openai"])
    with make_server("openai") as srv:
        yield srv


def _spec(server, **options: str) -> str:
    return f"openai-compatible:{server.base_url}#{MODELS['openai']}" + "".join(f",{k}={v}" for k, v in options.items())


def _capabilities(spec: str) -> Capabilities:
    adapter = load_adapter(spec)
    try:
        return adapter.capabilities
    finally:
        adapter.close()


def test_loglikelihoods_are_claimed_only_with_a_tokenizer(server, tiny_model: Path) -> None:
    assert _capabilities(_spec(server)) == Capabilities(loglikelihood=False, generate=True, chat=True)
    assert _capabilities(_spec(server, tokenizer=str(tiny_model))) == Capabilities(True, True, True)


def test_auto_formulation_asks_for_letters_without_a_tokenizer(server) -> None:
    record = evalboard.evaluate(_spec(server), ["arc_easy"], limit=2, output_dir=None, cache=False)
    entry = record.tasks["arc_easy"]
    assert entry.formulation == "generative" and entry.n_items == 2 and entry.failed_items == 0
    asked = [e.body for e in server.log if e.path.endswith("/completions")]
    assert len(asked) == 2 and all("echo" not in body and "A. " in body["prompt"] for body in asked)


def test_loglikelihood_formulation_is_refused_before_any_request(server) -> None:
    with pytest.raises(UserError, match=r"logprobs.*--formulation generative"):
        evalboard.evaluate(_spec(server), ["arc_easy"], limit=2, output_dir=None, cache=False,
                           formulation="loglikelihood")
    assert not [e for e in server.log if e.path.endswith("/completions")]


# --------------------------------------------------------------------------- one model, several URLs


def _replica_spec(*servers, **options: str) -> str:
    urls = "|".join(s.base_url for s in servers)
    return f"openai-compatible:{urls}#{MODELS['openai']}" + "".join(f",{k}={v}" for k, v in options.items())


def _texts(adapter, prompts: list[str]) -> list[str | None]:
    from evalboard.requests import GenerateRequest, GenerationParams

    results: dict[int, object] = {}
    requests = [GenerateRequest(p, GenerationParams(max_new_tokens=8)) for p in prompts]
    adapter.generate(requests, results.__setitem__)
    return [getattr(results[i], "text", None) for i in range(len(prompts))]


def test_one_model_at_two_urls_answers_as_one_server_and_spreads_the_requests(server) -> None:
    """`URL1|URL2#MODEL`: every request answered once, by one of the replicas, the same text as the
    one-URL adapter; the concurrency limit counts the model's requests, spread evenly; the
    fingerprint is the model's, not the URLs'."""
    prompts = [f"question {i}: say something" for i in range(24)]
    with make_server("openai") as second:
        server.latency_s = second.latency_s = 0.02  # requests overlap, so both replicas are needed
        fixed = {"concurrency": "4", "max_concurrency": "4"}
        one, two = load_adapter(_spec(server, **fixed)), load_adapter(_replica_spec(server, second, **fixed))
        try:
            alone = _texts(one, prompts)
            server.reset_log()
            spread = _texts(two, prompts)
            assert spread == alone and all(alone)
            counts = (server.count(), second.count())
            assert sum(counts) == len(prompts) and min(counts) >= len(prompts) // 4, counts
            # 4 in flight to the model in all, each to the least busy replica: at most 2 at either
            assert 1 <= server.peak_in_flight <= 2 and 1 <= second.peak_in_flight <= 2
            assert two.fingerprint() == one.fingerprint()
            assert two.describe()["servers"] == [server.base_url, second.base_url]
            assert [r["answered"] for r in two.usage_summary()["replicas"]] == list(counts)
        finally:
            one.close()
            two.close()


def test_a_replica_that_goes_down_leaves_its_requests_to_the_others(server) -> None:
    """A replica that stops answering mid-run (connection refused): its attempts are retried on the
    other one, nothing is lost, and the texts are those of a healthy run."""
    prompts = [f"item {i}" for i in range(12)]
    healthy = load_adapter(_spec(server))
    try:
        expected = _texts(healthy, prompts)
    finally:
        healthy.close()
    second = make_server("openai")
    second.start()
    adapter = load_adapter(_replica_spec(second, server, backoff="0.01", backoff_max="0.05"))
    try:
        second.stop()
        server.reset_log()
        assert _texts(adapter, prompts) == expected
        assert server.count() == len(prompts)
        down, up = adapter.usage_summary()["replicas"]
        assert down["answered"] == 0 and down["failed"] >= 1 and up["answered"] == len(prompts)
    finally:
        adapter.close()


def test_replicas_share_the_response_cache_with_the_one_url_model(server, tmp_path: Path) -> None:
    """The cache key is the model, not where it is served: a run over two URLs, then the same run
    over one, asks the server nothing the second time."""
    cache = tmp_path / "cache.sqlite"
    with make_server("openai") as second:
        evalboard.evaluate(_replica_spec(server, second), ["gsm8k_cot"], limit=3, output_dir=None, cache=cache)
        assert server.count() + second.count() > 0
        server.reset_log()
        record = evalboard.evaluate(_spec(server), ["gsm8k_cot"], limit=3, output_dir=None, cache=cache)
        assert server.count() == 0 and record.tasks["gsm8k_cot"].n_items == 3


def test_a_replica_serving_another_model_is_one_line(server) -> None:
    with make_server("openai", models=("another-model",)) as other:
        with pytest.raises(UserError, match=f"replica {other.base_url} does not serve model"):
            load_adapter(_replica_spec(server, other))
    with pytest.raises(UserError, match="names a URL twice"):
        load_adapter(_replica_spec(server, server))
