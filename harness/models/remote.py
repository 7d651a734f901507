"""Sending many requests to a remote model API: concurrency, retries, rate limits. Shared by every
HTTP adapter (openai, anthropic, openai-compatible); knows nothing about any one API.

Public API (stable):

    RemotePolicy(concurrency=8, max_concurrency=64, max_retries=6, timeout_s=60.0,
                 backoff_base_s=0.5, backoff_max_s=30.0,
                 requests_per_minute=None, tokens_per_minute=None)
    RemotePolicy.from_options(options, settings) -> RemotePolicy  # spec options, see below
    RetryableError(message, *, status=None, retry_after_s=None)   # raise from a call: retry it
    NonRetryableError(message, *, status=None)                    # raise: fail this item now
    classify_error(exc, *, auth_hint="") -> BaseException
        # an SDK/httpx error -> one of the above, a UserError (abort the run) or exc itself (bug)
    retry_after_seconds(headers) -> float | None                  # Retry-After / retry-after-ms
    redact(text, secrets) -> str                                  # hide API keys in any text
    run_sync(coro) -> result                                      # a coroutine from sync code
    BackgroundLoop().run(coro) -> result; .close(cleanup=None)
        # one event loop kept across calls, so an SDK client and its connections are reused
    RemoteRunner(policy, *, secrets=(), auth_hint="")
        .run(items, call, on_result, *, estimate_tokens=None)      # sync; own event loop
        await .run_async(items, call, on_result, *, estimate_tokens=None)
        .stats  # requests_sent (HTTP attempts), retries, failures, rate_limited (429s), timeouts,
                # peak_concurrency (most attempts in flight at once), concurrency_limit (current)

`call(item)` is an async function that makes ONE attempt and returns a `Response`; it raises on
failure. The runner calls `on_result(index, response)` exactly once per item, as items finish
(not in submission order), with `response.usage.attempts` set to the number of tries. How an
exception from `call` is treated (after `classify_error`):

- RetryableError (429, 408, 409, 5xx, 529, timeouts, connection errors/resets, malformed JSON,
  truncated streams): retried up to `max_retries` times with exponential backoff and full jitter;
  a Retry-After from the server (any status) replaces the backoff and pauses every new attempt
  until it has passed. Still failing after the last retry: the item's result is
  `Response(error=...)`.
- NonRetryableError (400, 413, 422, other 4xx): the item's result is `Response(error=...)` at once.
- UserError (401/403 bad key, 404 unknown model or route): the whole run stops and the UserError
  propagates: every other request would fail the same way.
- anything else is a bug: the run stops and the exception propagates.

Concurrency is adaptive (AIMD, as TCP): the limit starts at `concurrency`, is halved (never below 1)
on a 429 or 529 overload, at most once per "window" (429s from attempts started before the last
decrease do not count again), and grows by one after `limit` successes in a row, up to
`max_concurrency`. Set `max_concurrency == concurrency` for a fixed limit. `requests_per_minute` and
`tokens_per_minute` are token buckets holding at most one second's worth, so no minute ever sees
more than the limit plus one second's burst; tokens are charged by `estimate_tokens(item)` before an
attempt and corrected with the usage the response reports.

Spec options read by `RemotePolicy.from_options` (e.g. `openai:gpt-4o-mini,concurrency=16,rpm=500`):
concurrency, max_concurrency, max_retries, timeout (seconds), rpm, tpm, backoff, backoff_max (s).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import email.utils
import json
import random
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Generic, Protocol, TypeVar

from evalboard.errors import UserError
from evalboard.models.spec_options import number_option
from evalboard.requests import Response, Usage

T = TypeVar("T")
R = TypeVar("R")

ResultCallback = Callable[[int, Response], None]

# A server asking for a longer pause than this is treated as asking for this long: a bad header
# must not hang a run for hours.
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class RemotePolicy:
    concurrency: int = 8  # starting concurrency limit
    max_concurrency: int = 64  # adaptive ceiling; == concurrency for a fixed limit
    max_retries: int = 6  # retries after the first try
    timeout_s: float = 60.0  # per attempt, whole response (a stream included)
    backoff_base_s: float = 0.5  # exponential backoff with full jitter, capped
    backoff_max_s: float = 30.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_concurrency < 1:
            raise UserError("concurrency must be at least 1")
        if self.max_retries < 0:
            raise UserError("max_retries must be 0 or more")
        if self.timeout_s <= 0:
            raise UserError("timeout must be a positive number of seconds")
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be positive (leave it out for no limit)")

    _OPTION_FIELDS = {
        "concurrency": ("concurrency", int),
        "max_concurrency": ("max_concurrency", int),
        "max_retries": ("max_retries", int),
        "timeout": ("timeout_s", float),
        "rpm": ("requests_per_minute", float),
        "tpm": ("tokens_per_minute", float),
        "backoff": ("backoff_base_s", float),
        "backoff_max": ("backoff_max_s", float),
    }

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(cls._OPTION_FIELDS)

    @classmethod
    def from_options(cls, options: Mapping[str, str], settings: Any = None) -> RemotePolicy:
        """Policy from model-spec options; `settings.concurrency` (AdapterSettings) is the default
        starting concurrency. Unknown keys are ignored (the adapter owns the other options)."""
        values: dict[str, Any] = {}
        if settings is not None and getattr(settings, "concurrency", None):
            values["concurrency"] = int(settings.concurrency)
        for key, (name, kind) in cls._OPTION_FIELDS.items():
            if key in options:
                values[name] = number_option(options, key, kind)
        concurrency = values.get("concurrency", cls.concurrency)
        values.setdefault("max_concurrency", max(cls.max_concurrency, concurrency))
        if values["max_concurrency"] < concurrency:
            values["max_concurrency"] = concurrency
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class RetryableError(Exception):
    """A failed attempt worth retrying (rate limit, overload, timeout, dropped connection...)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def overloaded(self) -> bool:
        """The server asks for less load: the concurrency limit is halved."""
        return self.status in (429, 529)


class NonRetryableError(Exception):
    """A failed attempt that would fail again (bad request): the item fails at once."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- error classification

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_ABORT_STATUS = {401, 403, 404}


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms` (OpenAI), else `Retry-After` as seconds
    or an HTTP date. None when absent or unreadable."""
    if not headers:
        return None
    getter = headers.get
    raw_ms = getter("retry-after-ms") or getter("Retry-After-Ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = getter("retry-after") or getter("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _sdk_message(exc: BaseException) -> str:
    """The server's own error message when the SDK parsed one, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return inner["message"]
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else str(exc)


def _has_base(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def classify_error(exc: BaseException, *, auth_hint: str = "") -> BaseException:
    """Map an exception from the openai/anthropic SDKs or httpx(2) to this module's kinds, by
    duck typing (no SDK import): both SDKs share the shape APIStatusError(status_code, response,
    body) / APIConnectionError / APITimeoutError. Unknown exceptions come back unchanged (bugs)."""
    if isinstance(exc, (RetryableError, NonRetryableError, UserError)):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return RetryableError("timed out waiting for the response")
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if isinstance(status, int) and response is not None:
        message = _sdk_message(exc)
        if status < 400:
            # An error event inside a 200 stream (e.g. Anthropic's overloaded_error mid-stream).
            return RetryableError(f"error during the stream: {message}", status=None)
        if status in _RETRYABLE_STATUS or status >= 500:
            headers = getattr(response, "headers", None)
            return RetryableError(
                f"HTTP {status}: {message}",
                status=status,
                retry_after_s=retry_after_seconds(headers),
            )
        if status in _ABORT_STATUS:
            hint = f"; {auth_hint}" if auth_hint and status in (401, 403) else ""
            return UserError(f"the API refused the request (HTTP {status}): {message}{hint}")
        return NonRetryableError(f"HTTP {status}: {message}", status=status)
    if _has_base(exc, "APITimeoutError") or _has_base(exc, "TimeoutException"):
        return RetryableError("the request timed out")
    if _has_base(exc, "APIConnectionError") or _has_base(exc, "TransportError"):
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        return RetryableError(f"connection error: {exc}{detail}")
    if _has_base(exc, "APIResponseValidationError"):
        return RetryableError(f"the server sent a malformed response: {exc}")
    if _has_base(exc, "APIError"):
        # An error event in a stream with no HTTP status (OpenAI SDK): transient server trouble.
        return RetryableError(f"error during the stream: {_sdk_message(exc)}")
    if isinstance(exc, json.JSONDecodeError):
        return RetryableError(f"the server sent malformed JSON: {exc}")
    if isinstance(exc, (ConnectionError, EOFError)):
        return RetryableError(f"connection error: {exc}")
    return exc


_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]*[\*\.]{3,}[A-Za-z0-9_\-]*|sk-[A-Za-z0-9_\-]{8,})")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Hide API keys: every given secret, and anything shaped like an `sk-...` key (servers echo
    masked keys such as `sk-abc***wxyz` in 401 messages)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


# --------------------------------------------------------------------------- event-loop helpers


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine to completion from synchronous code: in this thread when no event loop runs
    here, else (e.g. inside Jupyter) in a fresh thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class BackgroundLoop:
    """An event loop in a daemon thread that outlives a call: an adapter keeps its SDK client (and
    its open connections) across `generate()` calls instead of paying for a new client, TLS
    context and handshakes per batch. `run()` blocks the calling thread until the coroutine is
    done; Ctrl-C there cancels it. `close()` stops the thread (safe to call twice)."""

    def __init__(self, name: str = "evalboard-remote") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("BackgroundLoop.run called from its own loop (re-entrant call)")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt in the caller: stop the requests too
            raise

    def close(self, cleanup: Coroutine[Any, Any, Any] | None = None) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            try:
                asyncio.run_coroutine_threadsafe(cleanup, loop).result(timeout=10)
            except Exception:  # closing is best effort: the loop goes away regardless
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


class TokenBucket:
    """A rate limit: `rate_per_minute` units, bursts of at most one second's worth. A charge larger
    than the burst waits for a full bucket and then goes into debt, so big requests still pass."""

    def __init__(self, rate_per_minute: float) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        need = min(amount, self.capacity)
        while True:
            self._refill()
            if self.level >= need:
                self.level -= amount
                return
            # Short naps, not one long sleep: a refund from `adjust` may fill the bucket sooner.
            await asyncio.sleep(min((need - self.level) / self.rate, 0.05))

    def adjust(self, delta: float) -> None:
        """Correct an estimate once the real usage is known (positive delta charges more)."""
        self._refill()
        self.level = min(self.capacity, self.level - delta)


class Bucket(Protocol):
    """What a runner needs of a rate limit: TokenBucket here, or one shared by a cluster's replicas."""

    async def take(self, amount: float) -> None: ...

    def adjust(self, delta: float) -> None: ...


# A process that is one replica of a model on a cluster takes its rate limits from buckets shared
# by every replica (`use_shared_rate_limits`), so the API sees the run's rpm/tpm in all and an idle
# replica's share is another's to use. One model per replica process, so this is per process.
_shared_buckets: dict[str, Callable[[], Bucket]] = {}


def use_shared_rate_limits(buckets: Mapping[str, Callable[[], Bucket]]) -> None:
    """From now on, runners in this process take `"rpm"` / `"tpm"` from these buckets, whatever
    rate their policy names (the shared bucket was made with the run's rate)."""
    _shared_buckets.clear()
    _shared_buckets.update(buckets)


def _bucket(name: str, rate_per_minute: float | None) -> Bucket | None:
    if rate_per_minute is None:
        return None
    shared = _shared_buckets.get(name)
    return shared() if shared is not None else TokenBucket(rate_per_minute)


# --------------------------------------------------------------------------- the runner


async def _with_timeout(coro: Awaitable[R], seconds: float) -> R:
    """The whole attempt under one deadline (a stream that trickles forever times out too)."""
    if sys.version_info >= (3, 11):  # no extra task per attempt
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)  # pragma: no cover - Python 3.10


class _Gate:
    """The adaptive concurrency limit and the global pause after a Retry-After, for one event
    loop. Waiters are plain futures: cheaper than a Condition on the hot path."""

    def __init__(self, runner: RemoteRunner) -> None:
        self.runner = runner
        self.in_flight = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def enter(self) -> None:
        runner = self.runner
        while True:
            pause = runner._pause_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.in_flight < runner._limit:
                break
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
        self.in_flight += 1
        stats = runner.stats
        if self.in_flight > stats["peak_concurrency"]:
            stats["peak_concurrency"] = self.in_flight

    def leave(self) -> None:
        self.in_flight -= 1
        self._wake(1)

    def poke(self) -> None:
        """The limit or the pause changed: let every waiter look again."""
        self._wake(len(self.waiters))

    def _wake(self, count: int) -> None:
        while count > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1


class RemoteRunner(Generic[T]):
    """Runs one async `call` per item under a `RemotePolicy`. Keeps its adaptive limit, rate
    buckets and stats across runs, so an adapter holds one runner for its lifetime."""

    def __init__(
        self, policy: RemotePolicy, *, secrets: Sequence[str] = (), auth_hint: str = ""
    ) -> None:
        self.policy = policy
        self._secrets = tuple(s for s in secrets if s)
        self._auth_hint = auth_hint
        self._limit = max(1, min(policy.concurrency, policy.max_concurrency))
        self._streak = 0
        self._epoch = 0
        self._pause_until = 0.0
        self._rng = random.Random()
        self._rpm = _bucket("rpm", policy.requests_per_minute)
        self._tpm = _bucket("tpm", policy.tokens_per_minute)
        self.stats: dict[str, int] = {
            "requests_sent": 0,
            "retries": 0,
            "failures": 0,
            "rate_limited": 0,
            "timeouts": 0,
            "peak_concurrency": 0,
            "concurrency_limit": self._limit,
        }

    # -- public

    def run(
        self,
        items: Sequence[T],
        call: Callable[[T], Awaitable[Response]],
        on_result: ResultCallback,
        *,
        estimate_tokens: Callable[[T], int] | None = None,
    ) -> None:
        run_sync(self.run_async(items, call, on_result, estimate_tokens=estimate_tokens))

    async def run_async(
        self,
        items: Sequence[T],
        call: Callable[[T], Awaitable[Response]],
        on_result: ResultCallback,
        *,
        estimate_tokens: Callable[[T], int] | None = None,
    ) -> None:
        if not items:
            return
        gate = _Gate(self)
        queue = iter(range(len(items)))

        async def worker() -> None:
            for index in queue:
                response = await self._one(gate, items[index], call, estimate_tokens)
                on_result(index, response)

        # A pool of workers no larger than the ceiling; the gate enforces the current limit.
        tasks = [
            asyncio.ensure_future(worker())
            for _ in range(min(len(items), self.policy.max_concurrency))
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one item, all its attempts

    async def _one(
        self,
        gate: _Gate,
        item: T,
        call: Callable[[T], Awaitable[Response]],
        estimate_tokens: Callable[[T], int] | None,
    ) -> Response:
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            estimate = estimate_tokens(item) if (self._tpm and estimate_tokens) else 0
            if self._rpm:
                await self._rpm.take(1)
            if self._tpm:
                await self._tpm.take(estimate)
            await gate.enter()
            epoch = self._epoch
            self.stats["requests_sent"] += 1
            try:
                response = await _with_timeout(call(item), self.policy.timeout_s)
                error: BaseException | None = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified below; bugs re-raised
                error = classify_error(exc, auth_hint=self._auth_hint)
                if isinstance(exc, asyncio.TimeoutError) or _has_base(exc, "APITimeoutError"):
                    self.stats["timeouts"] += 1
                if error is exc and not isinstance(
                    exc, (RetryableError, NonRetryableError, UserError)
                ):
                    raise
            finally:
                gate.leave()

            if error is None:
                if self._tpm:
                    used = response.usage.input_tokens + response.usage.output_tokens
                    self._tpm.adjust(used - estimate)
                self._on_success(gate)
                response.usage.attempts = attempts
                return response

            self._streak = 0
            if isinstance(error, UserError):
                raise UserError(redact(str(error), self._secrets)) from None
            if isinstance(error, RetryableError):
                if error.rate_limited:
                    self.stats["rate_limited"] += 1
                if error.retry_after_s is not None:
                    self._pause_all(gate, error.retry_after_s)
                if error.overloaded:
                    self._on_overload(gate, epoch)
                if attempts <= self.policy.max_retries:
                    self.stats["retries"] += 1
                    await asyncio.sleep(self._backoff(attempts, error.retry_after_s))
                    continue
                reason = f"failed after {attempts} attempts: {error}"
            else:
                reason = f"failed: {error}"
            self.stats["failures"] += 1
            usage = Usage(latency_s=time.monotonic() - started, attempts=attempts)
            return Response(error=redact(reason, self._secrets), usage=usage)

    # -- adaptive limit and backoff

    def _on_success(self, gate: _Gate) -> None:
        # Grow only a limit that is in use (as TCP's congestion window validation, RFC 7661): an
        # answer that came back while fewer requests than the limit were out says nothing about
        # whether the server takes more, and counting it let a client too slow to fill its window
        # (a busy CPU, the last requests of a run) creep past the server's capacity unchecked.
        if gate.in_flight + 1 < self._limit:  # this request has already left the gate
            return
        self._streak += 1
        if self._streak >= self._limit and self._limit < self.policy.max_concurrency:
            self._limit += 1
            self._streak = 0
            self.stats["concurrency_limit"] = self._limit
            gate.poke()

    def _pause_all(self, gate: _Gate, retry_after_s: float) -> None:
        """The server named a time to come back: no new attempt starts before it."""
        pause = min(retry_after_s, MAX_RETRY_AFTER_S)
        self._pause_until = max(self._pause_until, time.monotonic() + pause)
        gate.poke()

    def _on_overload(self, gate: _Gate, epoch: int) -> None:
        if epoch == self._epoch:  # once per window: later 429s of the same burst don't count
            self._epoch += 1
            self._limit = max(1, self._limit // 2)
            self.stats["concurrency_limit"] = self._limit
        gate.poke()

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, MAX_RETRY_AFTER_S)
        ceiling = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def with_policy(self, **changes: Any) -> RemoteRunner[T]:
        """A fresh runner with some policy fields changed (e.g. fewer retries for a preflight)."""
        return RemoteRunner(
            replace(self.policy, **changes), secrets=self._secrets, auth_hint=self._auth_hint
        )
