"""A real HTTP server on 127.0.0.1 (aiohttp, in a background thread) with scriptable faults.

Subclasses (OpenAIServer, AnthropicServer) add the routes of one wire protocol. Everything a test
needs to steer or observe lives here:

    with OpenAIServer(api_key="sk-test", models=("gpt-test",)) as server:
        server.script("hello", [Fault.http(429, retry_after="1"), Fault.ok()])  # per prompt
        server.default_fault = lambda key, attempt: Fault.http(500) if attempt == 1 else None
        server.latency_s = 0.2           # fixed time before the first byte of every answer
        server.capacity = 4              # more concurrent requests than this get a 429
        ... client talks to server.base_url ...
        server.count("hello"), server.log, server.peak_in_flight

A request's *key* is the prompt: the last user message of a chat request, the prompt of a
completions request. Faults are consumed per key in order; when a key's script runs out (or it has
none), `default_fault(key, attempt_number)` decides, and None means answer normally.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .toy_model import Responder, echo_responder


@dataclass(frozen=True)
class Fault:
    """What the server does to one request instead of (or on the way to) answering it."""

    kind: str  # ok | http | slow | reset | malformed | truncate | stream_error
    status: int = 200
    retry_after: str | None = None  # Retry-After header value
    retry_after_ms: str | None = None  # retry-after-ms header value (OpenAI)
    delay_s: float = 0.0
    after_pieces: int = 1  # for streamed faults: how many tokens go out first
    message: str | None = None  # for http faults: the error message (default "injected HTTP n")

    @staticmethod
    def ok() -> Fault:
        return Fault("ok")

    @staticmethod
    def http(
        status: int,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """An error status with the protocol's error body (429, 500, 503, 529, 400...)."""
        return Fault(
            "http",
            status=status,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            message=message,
        )

    @staticmethod
    def slow(delay_s: float) -> Fault:
        """Wait this long before answering (past the client's timeout)."""
        return Fault("slow", delay_s=delay_s)

    @staticmethod
    def reset(after_pieces: int = 0) -> Fault:
        """Drop the connection with a TCP reset: before any byte (0), or mid-stream."""
        return Fault("reset", after_pieces=after_pieces)

    @staticmethod
    def malformed() -> Fault:
        """200 with a body (or a stream event) that is not valid JSON."""
        return Fault("malformed")

    @staticmethod
    def truncate(after_pieces: int = 1) -> Fault:
        """A stream that ends cleanly but early: no final events, no [DONE]."""
        return Fault("truncate", after_pieces=after_pieces)

    @staticmethod
    def stream_error(after_pieces: int = 1) -> Fault:
        """An error event inside a 200 stream (an overloaded server mid-answer)."""
        return Fault("stream_error", after_pieces=after_pieces)


@dataclass
class LoggedRequest:
    path: str
    key: str
    body: dict[str, Any]
    headers: dict[str, str]
    fault: str
    in_flight: int = 0  # requests being served when this one arrived, itself included
    status: int = 0
    started: float = 0.0  # time.monotonic(), same clock as the tests
    finished: float = 0.0


@dataclass
class _State:
    scripts: dict[str, list[Fault]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0


class AbortConnection(Exception):
    """Raised inside a handler after the socket was reset: nothing more can be sent."""


class FakeAPIServer:
    """Base class: the thread, the loop, the log, the fault script. Subclasses add routes."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] = ("test-model",),
        responder: Responder = echo_responder,
        echo_key_in_errors: bool = False,
    ) -> None:
        self.api_key = api_key
        self.models = models
        self.responder = responder
        self.echo_key_in_errors = echo_key_in_errors  # worst case: a 401 quoting the whole key
        self.latency_s = 0.0
        self.piece_delay_s = 0.0  # between streamed tokens
        self.capacity: int | None = None
        self.capacity_retry_after: str | None = None
        # Parameters this "model" refuses with a 400 naming them (as reasoning models do with
        # temperature): e.g. {"temperature", "top_p"}.
        self.reject_params: set[str] = set()
        self.default_fault: Callable[[str, int], Fault | None] = lambda key, attempt: None
        self._state = _State()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- to override

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- lifecycle

    def __enter__(self) -> FakeAPIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-api", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        self.add_routes(app)
        # handler_cancellation: a client that hangs up (timeout) cancels its handler.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting and observation (thread-safe)

    def script(self, key: str, faults: list[Fault]) -> None:
        with self._lock:
            self._state.scripts.setdefault(key, []).extend(faults)

    def reset_log(self) -> None:
        with self._lock:
            self._state.log.clear()
            self._state.attempts.clear()
            self._state.peak_in_flight = 0

    @property
    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._state.log)

    def count(self, key: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._state.log if key is None or r.key == key)

    @property
    def peak_in_flight(self) -> int:
        return self._state.peak_in_flight

    # -- used by handlers

    def _begin(
        self, request: web.Request, key: str, body: dict[str, Any]
    ) -> tuple[Fault, LoggedRequest]:
        with self._lock:
            state = self._state
            attempt = state.attempts.get(key, 0) + 1
            state.attempts[key] = attempt
            script = state.scripts.get(key)
            fault = script.pop(0) if script else self.default_fault(key, attempt)
            over_capacity = self.capacity is not None and state.in_flight >= self.capacity
            state.in_flight += 1
            state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
            if fault is None and over_capacity:
                fault = Fault.http(429, retry_after=self.capacity_retry_after)
            fault = fault or Fault.ok()
            headers = {k.lower(): v for k, v in request.headers.items()}
            for secret in ("authorization", "x-api-key"):
                headers.pop(secret, None)
            entry = LoggedRequest(
                request.path,
                key,
                body,
                headers,
                fault.kind,
                state.in_flight,
                started=time.monotonic(),
            )
            state.log.append(entry)
        return fault, entry

    def _end(self, entry: LoggedRequest, status: int) -> None:
        with self._lock:
            self._state.in_flight -= 1
            entry.status = status
            entry.finished = time.monotonic()

    @staticmethod
    def reset_connection(request: web.Request) -> None:
        """Close the socket with SO_LINGER 0, so the client sees a TCP RST, not a clean close."""
        transport = request.transport
        if transport is None:
            raise AbortConnection()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        raise AbortConnection()

    def presented_key(self, request: web.Request) -> str | None:
        raise NotImplementedError

    def key_problem(self, request: web.Request) -> str | None:
        """None when the key is right (or none is required), else the 401 message."""
        if self.api_key is None:
            return None
        got = self.presented_key(request)
        if got == self.api_key:
            return None
        if got and self.echo_key_in_errors:
            return f"Incorrect API key provided: {got}."
        masked = f"{got[:3]}***{got[-4:]}" if got and len(got) > 8 else "(none)"
        return f"Incorrect API key provided: {masked}."

    async def pause(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


async def write_then_reset(request: web.Request, response: web.StreamResponse) -> None:
    """Flush what was written, then reset the connection."""
    await asyncio.sleep(0.01)
    FakeAPIServer.reset_connection(request)


@dataclass
class Answer:
    """One normal answer, as the protocol renders it: a JSON body, or SSE frames split so that
    faults can cut the stream after some tokens."""

    body: dict[str, Any] | None = None  # non-streamed
    head: list[str] = field(default_factory=list)  # streamed: frames before the tokens
    pieces: list[str] = field(default_factory=list)  # one frame per token
    tail: list[str] = field(default_factory=list)  # frames after the tokens


def sse(data: str, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {data}\n\n"


class ProtocolServer(FakeAPIServer):
    """The request flow shared by both protocols; subclasses render bodies, frames and errors."""

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        raise NotImplementedError

    def stream_error_frame(self) -> str:
        raise NotImplementedError

    def malformed_frame(self) -> str:
        """A stream event whose data is cut-off JSON."""
        return sse('{"id": "broken", "choices": [{"delta": ')

    async def serve(
        self,
        request: web.Request,
        key_of: Callable[[dict[str, Any]], str],
        answer_of: Callable[[dict[str, Any]], Answer],
        check: Callable[[web.Request, dict[str, Any]], web.Response | None] | None = None,
    ) -> web.StreamResponse:
        problem = self.key_problem(request)
        if problem is not None:
            return self.error_response(401, problem)
        try:
            body = await request.json()
        except ValueError:
            return self.error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return self.error_response(400, "The request body must be a JSON object.")
        rejected = check(request, body) if check else None
        if rejected is not None:
            return rejected
        refused = sorted(self.reject_params & set(body))
        if refused:
            return self.error_response(
                400, f"Unsupported parameter: '{refused[0]}' is not supported with this model."
            )
        model = body.get("model")
        if model not in self.models:
            return self.error_response(
                404, f"The model `{model}` does not exist or you do not have access to it."
            )
        fault, entry = self._begin(request, key_of(body), body)
        status = 0
        try:
            await self.pause(self.latency_s)
            if fault.kind == "http":
                status = fault.status
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                if fault.retry_after_ms is not None:
                    headers["retry-after-ms"] = fault.retry_after_ms
                message = fault.message or f"injected HTTP {fault.status}"
                return self.error_response(fault.status, message, headers)
            if fault.kind == "slow":
                await self.pause(fault.delay_s)
            answer = answer_of(body)
            if fault.kind == "reset" and (fault.after_pieces == 0 or answer.body is not None):
                self.reset_connection(request)
            if answer.body is not None:
                status = 200
                if fault.kind == "malformed":
                    return web.Response(
                        text='{"id": "x", "choices": [{"inde', content_type="application/json"
                    )
                if fault.kind in ("truncate", "stream_error"):
                    return await self._truncated_body(request, answer.body)
                return web.json_response(answer.body)
            status = 200
            return await self._stream(request, answer, fault)
        except AbortConnection:
            status = -1
            raise asyncio.CancelledError() from None
        finally:
            self._end(entry, status)

    async def _truncated_body(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        import json

        blob = json.dumps(body).encode()
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = len(blob)
        await response.prepare(request)
        await response.write(blob[: len(blob) // 2])
        await write_then_reset(request, response)
        return response

    async def _stream(
        self, request: web.Request, answer: Answer, fault: Fault
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for frame in answer.head:
            await response.write(frame.encode())
        cut = (
            fault.after_pieces
            if fault.kind in ("reset", "truncate", "malformed", "stream_error")
            else None
        )
        for i, frame in enumerate(answer.pieces):
            if cut is not None and i >= cut:
                break
            if i:
                await self.pause(self.piece_delay_s)
            await response.write(frame.encode())
        if cut is None:
            for frame in answer.tail:
                await response.write(frame.encode())
        elif fault.kind == "reset":
            await write_then_reset(request, response)
        elif fault.kind == "malformed":
            await response.write(self.malformed_frame().encode())
        elif fault.kind == "stream_error":
            await response.write(self.stream_error_frame().encode())
        # truncate: nothing more, a clean end of the body
        await response.write_eof()
        return response
