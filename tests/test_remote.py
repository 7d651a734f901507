"""The remote-API machinery (evalboard.models.remote) end to end: real openai/anthropic clients against
real HTTP servers on 127.0.0.1 that inject faults; every count checked against the server's log."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import Counter

import pytest
from evalboard.errors import UserError
from evalboard.models.remote import (
    NonRetryableError,
    RemotePolicy,
    RemoteRunner,
    RetryableError,
    TokenBucket,
    classify_error,
    redact,
    retry_after_seconds,
)
from evalboard.requests import GenerateRequest, GenerationParams, Response
from servers import Fault
from servers.fixtures import KEYS, close_adapters, make_adapter, make_server

PROVIDERS = ("openai", "anthropic")


def prompts(n: int, prefix: str = "prompt") -> list[GenerateRequest]:
    return [GenerateRequest(f"{prefix} {i}", GenerationParams(max_new_tokens=16)) for i in range(n)]


def run(adapter, requests) -> dict[int, Response]:
    """Generate, checking that every index is reported exactly once."""
    seen: list[int] = []
    results: dict[int, Response] = {}

    def on_result(index: int, response: Response) -> None:
        seen.append(index)
        results[index] = response

    adapter.generate(requests, on_result)
    assert sorted(seen) == list(range(len(requests))), "an item was lost or reported twice"
    return results


@pytest.fixture(autouse=True)
def _close_adapters():
    yield
    close_adapters()  # no event-loop threads outlive a test


@pytest.fixture(params=PROVIDERS)
def provider(request) -> str:
    return request.param


@pytest.fixture
def server(provider):
    with make_server(provider) as srv:
        yield srv


# ----------------------------------------------------------------------------- every fault kind

FAULTS = {
    "429 without Retry-After": Fault.http(429),
    "429 with Retry-After": Fault.http(429, retry_after="0.05"),
    "500": Fault.http(500),
    "503": Fault.http(503),
    "529 overloaded": Fault.http(529),
    "slow past the timeout": Fault.slow(2.5),
    "connection reset before the answer": Fault.reset(0),
    "connection reset mid-stream": Fault.reset(2),
    "malformed JSON": Fault.malformed(),
    "truncated stream": Fault.truncate(1),
    "error event mid-stream": Fault.stream_error(1),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_every_fault_is_retried_counted_and_nothing_is_lost(provider, server, monkeypatch, fault):
    # A short timeout only where the fault needs one: on a busy machine a healthy answer can take
    # a while, and a spurious timeout would be one more (correctly counted) attempt.
    timeout = 1.0 if fault.startswith("slow") else 60
    adapter = make_adapter(provider, server, monkeypatch, timeout=timeout, max_retries=3)
    adapter.check()
    server.reset_log()
    requests = prompts(12)
    # Items 0-3 fail once or twice before they succeed; the others are healthy.
    for i, times in enumerate((1, 2, 1, 2)):
        server.script(f"prompt {i}", [FAULTS[fault]] * times)

    results = run(adapter, requests)

    stats = adapter.usage_summary()
    for i, response in results.items():
        assert response.error is None, response.error
        assert response.text == f"echo: prompt {i}"
        assert response.usage.attempts == server.count(
            f"prompt {i}"
        )  # the client's count = the server's
    assert [results[i].usage.attempts for i in range(5)] == [2, 3, 2, 3, 1]
    assert (
        stats["requests_sent"] == server.count() == sum(r.usage.attempts for r in results.values())
    )
    assert stats["retries"] == server.count() - len(requests) == 6
    assert stats["failures"] == 0
    assert stats["rate_limited"] == (6 if fault.startswith("429") else 0)
    if fault.startswith("slow"):
        assert stats["timeouts"] == 6


def test_past_max_retries_the_item_fails_and_is_reported(provider, server, monkeypatch):
    adapter = make_adapter(provider, server, monkeypatch, max_retries=2)
    adapter.check()
    server.reset_log()
    server.script("prompt 3", [Fault.http(500)] * 10)

    results = run(adapter, prompts(6))

    failed = results[3]
    assert failed.failed and failed.text is None
    assert "failed after 3 attempts" in failed.error and "HTTP 500" in failed.error
    assert failed.usage.attempts == 3 == server.count("prompt 3")
    assert all(results[i].error is None for i in (0, 1, 2, 4, 5))
    stats = adapter.usage_summary()
    assert (
        stats["failures"] == 1
        and stats["retries"] == 2
        and stats["requests_sent"] == server.count() == 8
    )


def test_a_bad_request_fails_at_once_without_retries(provider, server, monkeypatch):
    adapter = make_adapter(provider, server, monkeypatch)
    adapter.check()
    server.reset_log()
    server.script("prompt 1", [Fault.http(400, message="prompt is too long")])

    results = run(adapter, prompts(4))

    assert results[1].error == "failed: HTTP 400: prompt is too long"
    assert results[1].usage.attempts == 1 == server.count("prompt 1")
    assert adapter.usage_summary()["retries"] == 0


def test_a_refused_key_mid_run_stops_the_run(provider, server, monkeypatch):
    adapter = make_adapter(provider, server, monkeypatch)
    adapter.check()
    server.script("prompt 2", [Fault.http(401, message="key revoked")])
    with pytest.raises(UserError, match="HTTP 401.*key revoked"):
        adapter.generate(prompts(4), lambda i, r: None)


# ----------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    "fault, wait_s",
    [
        (Fault.http(429, retry_after="1"), 1.0),
        (Fault.http(429, retry_after_ms="700"), 0.7),
        (Fault.http(503, retry_after="0.8"), 0.8),
    ],
    ids=["Retry-After seconds", "retry-after-ms", "503 with Retry-After"],
)
def test_retry_after_is_honoured(provider, server, monkeypatch, fault, wait_s):
    adapter = make_adapter(provider, server, monkeypatch, concurrency=1, max_concurrency=1)
    adapter.check()
    server.reset_log()
    server.script("prompt 0", [fault])

    results = run(adapter, prompts(1))

    first, second = server.log
    assert results[0].usage.attempts == 2
    assert second.started - first.finished >= wait_s  # waited at least what the server asked


def test_retry_after_pauses_every_new_request(monkeypatch):
    """A 429 with Retry-After holds back the other requests too, not only the one refused."""
    with make_server("openai") as server:
        adapter = make_adapter("openai", server, monkeypatch, concurrency=4, max_concurrency=4)
        adapter.check()
        server.reset_log()
        server.latency_s = 0.05
        server.script("prompt 0", [Fault.http(429, retry_after="1")])
        run(adapter, prompts(12))
        refused = next(e for e in server.log if e.status == 429)
        # Without the pause the other 11 would all be done within that second; with it, only
        # those already on their way (at most concurrency - 1) arrive during the pause.
        during = [e for e in server.log if refused.finished < e.started < refused.finished + 1.0]
        assert len(during) <= 3
        assert max(e.started for e in server.log) - refused.finished >= 1.0


# ----------------------------------------------------------------------------- adaptive concurrency


def test_adaptive_concurrency_backs_off_on_429(monkeypatch):
    with make_server("openai") as server:
        adapter = make_adapter(
            "openai", server, monkeypatch, concurrency=16, max_concurrency=16, max_retries=20
        )
        adapter.check()
        server.reset_log()
        server.latency_s = 0.05
        server.capacity = 4  # more than 4 at once get 429

        results = run(adapter, prompts(160))

        assert all(r.error is None for r in results.values())
        stats = adapter.usage_summary()
        log = server.log
        assert stats["rate_limited"] == sum(1 for e in log if e.status == 429) > 0
        assert max(e.in_flight for e in log[:16]) > 8  # it started wide...
        late = log[len(log) // 2 :]
        # ...and settled near the server's capacity: AIMD saws between capacity/2 and capacity+1.
        assert max(e.in_flight for e in late) <= 6
        assert stats["concurrency_limit"] <= 5
        assert stats["requests_sent"] == len(log) == sum(r.usage.attempts for r in results.values())


def test_adaptive_concurrency_grows_when_healthy(monkeypatch):
    with make_server("openai") as server:
        adapter = make_adapter("openai", server, monkeypatch, concurrency=2, max_concurrency=12)
        adapter.check()
        server.reset_log()
        server.latency_s = 0.03
        run(adapter, prompts(150))
        stats = adapter.usage_summary()
        assert stats["concurrency_limit"] > 6
        assert server.peak_in_flight > 6
        assert server.peak_in_flight <= 12 and stats["peak_concurrency"] <= 12


# ----------------------------------------------------------------------------- rate limits


def test_requests_per_minute_are_respected(monkeypatch):
    rpm = 300  # 5 a second, bursts of one second's worth (5)
    with make_server("openai") as server:
        adapter = make_adapter("openai", server, monkeypatch, rpm=rpm, concurrency=16)
        adapter.check()  # the preflight has its own runner: the run starts with a full bucket
        server.reset_log()
        started = time.monotonic()
        run(adapter, prompts(20))
        elapsed = time.monotonic() - started
        starts = sorted(e.started for e in server.log)
        rate, burst = rpm / 60, rpm / 60
        # The token-bucket guarantee: between any two requests, at most burst + rate * dt were sent.
        for i in range(len(starts)):
            for j in range(i + 1, len(starts)):
                assert j - i + 1 <= burst + rate * (starts[j] - starts[i]) + 1e-6 + 1
        assert elapsed >= (20 - burst) / rate * 0.95


def test_tokens_per_minute_bucket_charges_real_usage():
    async def scenario() -> float:
        bucket = TokenBucket(600)  # 10 tokens a second, bursts of 10
        started = time.monotonic()
        for _ in range(3):
            await bucket.take(10)
        return time.monotonic() - started

    assert asyncio.run(scenario()) >= 1.9  # 30 tokens at 10/s with a burst of 10: two seconds
    bucket = TokenBucket(600)
    bucket.adjust(+25)  # the answer used 25 more tokens than estimated: debt
    assert bucket.level < 0


def test_tokens_per_minute_are_respected_with_real_usage(monkeypatch):
    """Each answer here uses 5 tokens; the estimate before sending is larger (18), and the bucket
    is corrected with the usage the API reports, so the pace follows the real 5."""
    with make_server("openai") as server:
        adapter = make_adapter("openai", server, monkeypatch, tpm=1200, concurrency=4)  # 20/s
        adapter.check()
        server.reset_log()
        started = time.monotonic()
        results = run(adapter, prompts(12))
        elapsed = time.monotonic() - started
        used = sum(r.usage.input_tokens + r.usage.output_tokens for r in results.values())
        assert used == 60
        assert elapsed >= (used - 20) / 20 * 0.9  # burst of 20, then 20 a second
        assert elapsed < (12 * 18 - 20) / 20 * 0.8  # far faster than charging the estimates


# ----------------------------------------------------------------------------- concurrency timing


def timed_run(server, monkeypatch, concurrency: int, n: int) -> float:
    adapter = make_adapter(
        "openai", server, monkeypatch, concurrency=concurrency, max_concurrency=concurrency
    )
    adapter.generate(prompts(concurrency, "warm-up"), lambda i, r: None)  # client, connections
    server.reset_log()
    started = time.perf_counter()
    results = run(adapter, prompts(n))
    elapsed = time.perf_counter() - started
    assert all(r.error is None for r in results.values())
    assert server.peak_in_flight == concurrency  # exactly C at once at the server, never more
    return elapsed


def test_concurrency_reaches_the_ideal_time(monkeypatch, capsys):
    latency = 0.2
    ratios = {}
    with make_server("openai") as server:
        server.latency_s = latency
        for concurrency, n in ((1, 10), (8, 200), (32, 200)):
            elapsed = timed_run(server, monkeypatch, concurrency, n)
            ideal = math.ceil(n / concurrency) * latency
            ratios[concurrency] = elapsed / ideal
            with capsys.disabled():
                print(
                    f"\nconcurrency {concurrency:>2}: {n} requests x {latency}s in {elapsed:.2f}s, "
                    f"ideal {ideal:.2f}s, ratio {ratios[concurrency]:.3f}"
                )
    # The target is 1.2 at C=8 and C=32 (see benchmarks/remote_concurrency.py and docs/remote.md).
    # Here client and server share one interpreter on a 2-core CI machine that may be busy, and at
    # C=32 the official client's own CPU cost (~2-3 ms a request) is most of the gap, so the bounds
    # only catch a runner that serialises or stalls.
    assert ratios[1] < 1.3 and ratios[8] < 1.6 and ratios[32] < 3.0


# ----------------------------------------------------------------------------- threads and loops


def test_runs_from_a_thread_and_from_inside_an_event_loop(monkeypatch):
    with make_server("openai") as server:
        adapter = make_adapter("openai", server, monkeypatch)
        out: dict[str, dict[int, Response]] = {}

        thread = threading.Thread(target=lambda: out.setdefault("thread", run(adapter, prompts(5))))
        thread.start()
        thread.join(timeout=120)  # generous: CI machines can be busy

        async def inside_a_loop() -> None:  # e.g. a notebook: run_sync moves to its own thread
            out["loop"] = run(adapter, prompts(5))

        asyncio.run(inside_a_loop())
        # same answer for every request index (completion order may differ: requests run concurrently)
        assert {i: r.text for i, r in out["thread"].items()} == {i: r.text for i, r in out["loop"].items()}
        assert len(out["thread"]) == 5


def test_runner_on_its_own_with_the_official_client(monkeypatch):
    """RemoteRunner as the openai-compatible adapter uses it: any async call, our own client."""
    import openai

    with make_server("openai") as server:
        server.script("b", [Fault.http(503), Fault.reset(0)])
        runner: RemoteRunner[str] = RemoteRunner(
            RemotePolicy(concurrency=4, backoff_base_s=0.01), secrets=(KEYS["openai"],)
        )

        async def main(results: dict[int, Response]) -> None:
            async with openai.AsyncOpenAI(
                api_key=KEYS["openai"], base_url=server.base_url, max_retries=0
            ) as client:

                async def call(prompt: str) -> Response:
                    answer = await client.completions.create(
                        model="gpt-4o-mini", prompt=prompt, max_tokens=5
                    )
                    return Response(text=answer.choices[0].text)

                await runner.run_async(["a", "b", "c"], call, results.__setitem__)

        results: dict[int, Response] = {}
        asyncio.run(main(results))
        assert [results[i].text for i in range(3)] == ["echo: a", "echo: b", "echo: c"]
        assert results[1].usage.attempts == 3 == server.count("b")
        assert runner.stats["requests_sent"] == 5 and runner.stats["retries"] == 2


# ----------------------------------------------------------------------------- pieces


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after_seconds({"retry-after": http_date}) <= 30


def test_classify_error_by_kind():
    assert isinstance(classify_error(asyncio.TimeoutError()), RetryableError)
    assert isinstance(classify_error(json.JSONDecodeError("x", "{", 0)), RetryableError)
    assert isinstance(classify_error(ConnectionResetError()), RetryableError)
    bug = KeyError("x")
    assert classify_error(bug) is bug  # unknown exceptions are bugs: never swallowed


def test_real_sdk_errors_are_classified(provider, server, monkeypatch):
    """The SDKs' own exception objects, produced by real responses, map to the right kinds."""
    import anthropic
    import openai

    def raised(status: int, **kw) -> BaseException:
        server.script("x", [Fault.http(status, **kw)])
        try:
            if provider == "openai":
                client = openai.OpenAI(
                    api_key=KEYS["openai"], base_url=server.base_url, max_retries=0
                )
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
            else:
                client = anthropic.Anthropic(
                    api_key=KEYS["anthropic"], base_url=server.root_url, max_retries=0
                )
                client.messages.create(
                    model="claude-haiku-4-5-20251001",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "x"}],
                )
        except Exception as exc:  # the SDK's exception is what we want
            return exc
        raise AssertionError("no error raised")

    limited = classify_error(raised(429, retry_after="3"))
    assert (
        isinstance(limited, RetryableError)
        and limited.rate_limited
        and limited.retry_after_s == 3.0
    )
    assert isinstance(classify_error(raised(500)), RetryableError)
    assert isinstance(classify_error(raised(400)), NonRetryableError)
    assert isinstance(classify_error(raised(404)), UserError)
    assert isinstance(classify_error(raised(401), auth_hint="check KEY"), UserError)


def test_policy_from_spec_options():
    policy = RemotePolicy.from_options({"concurrency": "4", "rpm": "120", "timeout": "9.5"})
    assert (
        policy.concurrency,
        policy.max_concurrency,
        policy.requests_per_minute,
        policy.timeout_s,
    ) == (4, 64, 120.0, 9.5)
    assert RemotePolicy.from_options({"concurrency": "100"}).max_concurrency == 100
    with pytest.raises(UserError, match="rpm"):
        RemotePolicy.from_options({"rpm": "many"})
    with pytest.raises(UserError):
        RemotePolicy(concurrency=0)


def test_backoff_is_capped_full_jitter():
    runner = RemoteRunner(RemotePolicy(backoff_base_s=0.5, backoff_max_s=4.0))
    waits = [runner._backoff(attempt, None) for attempt in range(1, 12) for _ in range(50)]
    assert 0 <= min(waits) and max(waits) <= 4.0
    assert max(runner._backoff(1, None) for _ in range(200)) <= 0.5
    assert runner._backoff(3, 7.0) == 7.0  # Retry-After replaces the backoff


def test_redact_hides_keys_and_masked_keys():
    key = KEYS["openai"]
    text = redact(f"Incorrect API key provided: {key}. Also sk-te***cdef.", [key])
    assert key not in text and "SECRET" not in text and "***" not in text


def test_counts_agree_under_mixed_faults_and_concurrency(monkeypatch):
    """Many items, many kinds of faults at once, high concurrency: still exactly once each."""
    with make_server("anthropic") as server:
        adapter = make_adapter("anthropic", server, monkeypatch, concurrency=24, timeout=1.0)
        adapter.check()
        server.reset_log()
        kinds = list(FAULTS.values())
        server.default_fault = lambda key, attempt: (
            kinds[sum(map(ord, key)) % len(kinds)]
            if attempt == 1 and int(key.split()[1]) % 3 == 0
            else None
        )
        results = run(adapter, prompts(90))
        assert all(r.text == f"echo: prompt {i}" for i, r in results.items())
        per_key = Counter(e.key for e in server.log)
        assert all(results[i].usage.attempts == per_key[f"prompt {i}"] for i in results)
        assert adapter.usage_summary()["requests_sent"] == len(server.log) == 90 + 30


def test_adapter_keeps_one_client_and_close_stops_its_thread(monkeypatch):
    with make_server("openai") as server:
        others = set(threading.enumerate())  # adapters of earlier tests may still be collected
        adapter = make_adapter("openai", server, monkeypatch)
        run(adapter, prompts(3))
        client = adapter._sdk
        run(adapter, prompts(3))
        assert (
            adapter._sdk is client
        )  # reused across calls: no new client, TLS context, connections
        adapter.close()
        adapter.close()  # twice is fine
        assert not [t for t in threading.enumerate() if t.name == "evalboard-openai" and t not in others]
        assert run(adapter, prompts(1))[0].text == "echo: prompt 0"  # usable again after close
        adapter.close()


def test_completions_endpoint_speaks_the_protocol():
    """The legacy /v1/completions route, as the openai client parses it: echo + logprobs, stream."""
    import openai

    with make_server("openai") as server:
        client = openai.OpenAI(api_key=KEYS["openai"], base_url=server.base_url, max_retries=0)
        scored = client.completions.create(
            model="gpt-4o-mini", prompt="The cat sat", max_tokens=0, echo=True, logprobs=1
        )
        choice = scored.choices[0]
        assert choice.text == "The cat sat"
        assert choice.logprobs.tokens == ["The", " cat", " sat"]
        assert choice.logprobs.token_logprobs == [None, -0.75, -0.75]
        assert choice.logprobs.text_offset == [0, 3, 7]
        assert scored.usage.prompt_tokens == 3 and scored.usage.completion_tokens == 0
        pieces = [
            c.choices[0].text
            for c in client.completions.create(
                model="gpt-4o-mini",
                prompt="a b",
                max_tokens=5,
                stream=True,
                stream_options={"include_usage": True},
            )
            if c.choices
        ]
        assert "".join(pieces) == "echo: a b"


def test_runner_run_is_synchronous_anywhere():
    """RemoteRunner.run from plain code, from a thread, and under a running loop (notebooks)."""

    async def call(item: int) -> Response:
        await asyncio.sleep(0.001)
        return Response(text=str(item))

    def collect() -> list[str]:
        out: dict[int, Response] = {}
        RemoteRunner(RemotePolicy()).run(list(range(20)), call, out.__setitem__)
        return [out[i].text for i in range(20)]

    expected = [str(i) for i in range(20)]
    assert collect() == expected
    box: list[list[str]] = []
    thread = threading.Thread(target=lambda: box.append(collect()))
    thread.start()
    thread.join(timeout=30)
    assert box == [expected]

    async def under_a_loop() -> list[str]:
        return collect()

    assert asyncio.run(under_a_loop()) == expected
