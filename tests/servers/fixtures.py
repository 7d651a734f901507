"""Helpers shared by the remote-API tests: start a protocol server, point an adapter at it."""

from __future__ import annotations

from typing import Any

import pytest
from evalboard.models.adapters.base import AdapterSettings, load_adapter

from .anthropic_server import AnthropicServer
from .base import ProtocolServer
from .openai_server import OpenAIServer

# Distinctive keys, so a leak anywhere is easy to find by substring.
KEYS = {
    "openai": "sk-test-SECRETopenai-0123456789abcdef",
    "anthropic": "sk-ant-test-SECRETanthropic-0123456789",
}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5-20251001"}


def make_server(provider: str, **kwargs: Any) -> ProtocolServer:
    kwargs.setdefault("api_key", KEYS[provider])
    kwargs.setdefault("models", (MODELS[provider],))
    cls = OpenAIServer if provider == "openai" else AnthropicServer
    return cls(**kwargs)


def server_url(server: ProtocolServer) -> str:
    """OpenAI clients take the URL with /v1; Anthropic clients the root."""
    return server.base_url if isinstance(server, OpenAIServer) else server.root_url


_OPEN: list[Any] = []


def close_adapters() -> None:
    """Close every adapter make_adapter made (their event-loop threads and clients)."""
    while _OPEN:
        _OPEN.pop().close()


def make_adapter(
    provider: str,
    server: ProtocolServer | None,
    monkeypatch: pytest.MonkeyPatch,
    *,
    model: str | None = None,
    url: str | None = None,
    **options: Any,
):
    """An adapter for `provider` pointed at `server`, its key set in the environment. Options are
    spec options (backoff, max_retries, concurrency, timeout, rpm...)."""
    monkeypatch.setenv(KEY_ENV[provider], KEYS[provider])
    options.setdefault("backoff", 0.01)
    options.setdefault("backoff_max", 0.05)
    base = url if url is not None else server_url(server)  # type: ignore[arg-type]
    opts = "".join(f",{k}={v}" for k, v in {"base_url": base, **options}.items())
    adapter = load_adapter(f"{provider}:{model or MODELS[provider]}{opts}", AdapterSettings())
    _OPEN.append(adapter)
    return adapter


def generate(adapter: Any, requests: list) -> list:
    """Run generate requests through an adapter and return the responses in request order."""
    results: dict[int, Any] = {}
    adapter.generate(requests, results.__setitem__)
    return [results[i] for i in range(len(requests))]


@pytest.fixture(autouse=True)
def adapters_closed_after_test():
    """Autouse in every test module that imports it: no adapter's event-loop thread outlives a test."""
    yield
    close_adapters()

