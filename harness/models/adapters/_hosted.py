"""What the closed-model chat APIs (openai:, anthropic:) share: the key from the environment, the
base URL, the remote runner, a preflight request, usage totals. Each API module adds only how one
attempt is sent and how its stream is read.

Sampling parameters: temperature/top_p/top_k are sent while the API takes them. Newer models
refuse them (HTTP 400: OpenAI's reasoning models, Anthropic models after Opus 4.6; anthropic SDK
>= 1.0 dropped the arguments, so they travel in `extra_body`). When the preflight is refused for
that reason, it is repeated without them; if that passes, the run goes on without them, a warning is
logged and `describe()["sampling"]` says so (the model then samples with its own defaults).

Preflight (decision): before the first batch of real requests, one request with the first
request's generation settings and `max_new_tokens=1` goes to the API, under the run's own retry
policy (backoff, Retry-After). A missing key, an unreachable URL, a refused key, an unknown model or
a rejected parameter then stops the run with one UserError line, before hundreds of requests fail
one by one. Transient trouble (429, 529, resets) is retried with backoff exactly as a request would
be; only when it outlasts every retry (the URL is not there, the API is down) does the run stop. `check()` runs it on
demand; `generate()` runs it once if it has not run. Nothing here needs the key until a request
is sent, so a fully cached run works without one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from evalboard.errors import UserError
from evalboard.models.adapters.base import (
    AdapterSettings,
    Capabilities,
    ModelAdapter,
    ModelSpec,
    ResultCallback,
)
from evalboard.models.pricing import cost_usd
from evalboard.models.remote import BackgroundLoop, NonRetryableError, RemotePolicy, RemoteRunner
from evalboard.requests import GenerateRequest, Message, Prompt, Response, Usage, prompt_text

ClientT = TypeVar("ClientT")
logger = logging.getLogger(__name__)

_CHAT_ROLES = ("system", "developer", "user", "assistant")


def chat_messages(prompt: Prompt) -> list[Message]:
    """A plain string is one user message; a conversation keeps its (role, content) pairs."""
    if isinstance(prompt, str):
        return [("user", prompt)]
    messages = list(prompt)
    for role, _ in messages:
        if role not in _CHAT_ROLES:
            raise NonRetryableError(
                f"unknown chat role {role!r}; use one of {', '.join(_CHAT_ROLES)}"
            )
    return messages


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """End the text before the first stop sequence: the API may take fewer stops than we have
    (OpenAI: 4), and results must not depend on which API applied them."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return text if cut < 0 else text[:cut]


class StreamTimer:
    """Latency and time to first token of one streamed attempt."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_token: float | None = None

    def token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic() - self.started

    def usage(self, input_tokens: int, output_tokens: int, cost: float | None) -> Usage:
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_s=time.monotonic() - self.started,
            time_to_first_token_s=self.first_token,
            cost_usd=cost or 0.0,
        )


class HostedChatAdapter(ModelAdapter, Generic[ClientT]):
    """A closed chat model behind a provider's API. Subclasses set the class constants and
    implement `_client()` and `_attempt()`."""

    provider: ClassVar[str]  # "openai" | "anthropic": pricing and fingerprints
    provider_name: ClassVar[str]  # for people: "OpenAI"
    key_env: ClassVar[str]
    base_url_env: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(self, spec: ModelSpec, settings: AdapterSettings) -> None:
        super().__init__(spec, settings)
        allowed = {"base_url", *RemotePolicy.option_names()}
        unknown = sorted(set(spec.options) - allowed)
        if unknown:
            raise UserError(
                f"unknown option(s) {', '.join(unknown)} in {spec.raw!r}; "
                f"{spec.scheme}: takes {', '.join(sorted(allowed))}"
            )
        if not spec.target:
            raise UserError(f"{spec.raw!r} names no model; write {spec.scheme}:MODEL_NAME")
        self.model = spec.target
        self.name = (
            f"{spec.scheme}:{self.model}"  # for messages: spec.raw may hold a URL with credentials
        )
        self.base_url = (
            spec.options.get("base_url")
            or os.environ.get(self.base_url_env)
            or self.default_base_url
        ).rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(
                f"base URL {self.base_url!r} for {spec.raw} is not an http(s) URL; "
                f"fix base_url= or {self.base_url_env}"
            )
        self.api_host = parts.netloc.rpartition("@")[2]  # never keep credentials in a URL
        self.display_url = f"{parts.scheme}://{self.api_host}{parts.path}"
        self.policy = RemotePolicy.from_options(spec.options, settings)
        self._runner: RemoteRunner[GenerateRequest] | None = None
        self._loop = BackgroundLoop(f"evalboard-{spec.scheme}")
        self._sdk: ClientT | None = None  # created on the loop, kept across calls
        self._busy = threading.Lock()  # one batch at a time shares the concurrency limit
        self._checked = False
        self.send_sampling = True  # temperature/top_p/top_k go out until the API refuses them
        self._preflight_requests = 0
        self._totals = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "unpriced": 0}

    # -- what a subclass provides

    @abstractmethod
    def _client(self, api_key: str) -> ClientT:
        """A new async SDK client with its own retries off (max_retries=0)."""

    @abstractmethod
    async def _attempt(self, client: ClientT, request: GenerateRequest) -> Response:
        """One streamed attempt; raise on any failure (the runner classifies and retries)."""

    # -- ModelAdapter

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(loglikelihood=False, generate=True, chat=True)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "adapter": self.spec.scheme,
            "provider": self.provider,
            "model": self.model,
            "api_host": self.api_host,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "open_weights": False,
            "kind": "closed model behind an API",
            "provider": self.provider_name,
            "model": self.model,
            "api_host": self.api_host,
            "sampling": "sent"
            if self.send_sampling
            else "omitted: the API refused temperature/top_p/top_k for this model",
        }

    def generate(self, requests: Sequence[GenerateRequest], on_result: ResultCallback) -> None:
        """Runs the batch on the adapter's own event-loop thread; `on_result` is called there
        while this thread waits."""
        if not requests:
            return
        with self._busy:
            self._loop.run(self._generate(requests, on_result))

    def check(self, params_from: GenerateRequest | None = None) -> None:
        """Fail fast: one cheap request; raises UserError (one line) on any problem."""
        with self._busy:
            self._loop.run(self._checked_preflight(params_from))

    def close(self) -> None:
        sdk, self._sdk = self._sdk, None
        self._loop.close(cleanup=sdk.close() if sdk is not None else None)  # type: ignore[attr-defined]

    def usage_summary(self) -> dict[str, Any]:
        stats = dict(self._runner.stats) if self._runner else {}
        cost = None if self._totals["unpriced"] else round(self._totals["cost_usd"], 6)
        return {
            **stats,
            "preflight_requests": self._preflight_requests,
            "input_tokens": self._totals["input_tokens"],
            "output_tokens": self._totals["output_tokens"],
            "cost_usd": cost,  # None: the model has no known price (see evalboard.models.pricing)
            "policy": self.policy.to_json(),
        }

    # -- internals

    def _api_key(self) -> str:
        key = os.environ.get(self.key_env, "").strip()
        if not key:
            raise UserError(
                f"{self.key_env} is not set: export {self.key_env}=<your key> to use {self.name}"
            )
        return key

    def runner(self) -> RemoteRunner[GenerateRequest]:
        if self._runner is None:
            self._runner = RemoteRunner(
                self.policy, secrets=(self._api_key(),), auth_hint=f"check {self.key_env}"
            )
        return self._runner

    def _client_here(self) -> ClientT:
        """The SDK client, made once (on first use, so a cached run needs no key)."""
        if self._sdk is None:
            self._sdk = self._client(self._api_key())
        return self._sdk

    async def _checked_preflight(self, params_from: GenerateRequest | None) -> None:
        await self._preflight(self._client_here(), params_from)

    async def _generate(
        self, requests: Sequence[GenerateRequest], on_result: ResultCallback
    ) -> None:
        runner = self.runner()
        client = self._client_here()
        if not self._checked:
            await self._preflight(client, requests[0])

        def record(index: int, response: Response) -> None:
            self._count(response)
            on_result(index, response)

        await runner.run_async(
            requests,
            lambda request: self._attempt(client, request),
            record,
            estimate_tokens=_estimate_tokens,
        )

    async def _preflight(self, client: ClientT, params_from: GenerateRequest | None) -> None:
        params = params_from.params if params_from is not None else GenerateRequest("").params
        probe = GenerateRequest("Reply with OK.", replace(params, max_new_tokens=1))
        error = await self._probe(client, probe)
        if error is not None and self.send_sampling and _about_sampling(error):
            self.send_sampling = False
            error = await self._probe(client, probe)
            if error is None:
                logger.warning(
                    "%s refuses temperature/top_p/top_k; sending requests without them", self.name
                )
            else:
                self.send_sampling = True
        if error is not None:
            raise UserError(
                f"{self.name}: the preflight request to {self.display_url} {error}; "
                f"check the URL (base_url= or {self.base_url_env}), the model name and the network"
            )
        self._checked = True

    async def _probe(self, client: ClientT, probe: GenerateRequest) -> str | None:
        """One request under the run's retry policy; the error text, or None when it went through."""
        runner = self.runner().with_policy(concurrency=1, max_concurrency=1)
        results: list[Response] = []
        try:
            await runner.run_async(
                [probe], lambda r: self._attempt(client, r), lambda i, r: results.append(r)
            )
        except UserError as exc:
            raise UserError(f"{self.name} at {self.api_host}: {exc}") from None
        finally:
            self._preflight_requests += runner.stats["requests_sent"]
        return results[0].error if results else "got no response"

    def _count(self, response: Response) -> None:
        usage = response.usage
        self._totals["input_tokens"] += usage.input_tokens
        self._totals["output_tokens"] += usage.output_tokens
        if response.error is None:
            if self.price(0, 0) is None:
                self._totals["unpriced"] += 1
            else:
                self._totals["cost_usd"] += usage.cost_usd

    def price(self, input_tokens: int, output_tokens: int) -> float | None:
        return cost_usd(self.provider, self.model, input_tokens, output_tokens)


def _estimate_tokens(request: GenerateRequest) -> int:
    """For the tokens-per-minute bucket before the real count is known: ~4 characters a token."""
    return len(prompt_text(request.context)) // 4 + request.params.max_new_tokens


def _about_sampling(error: str) -> bool:
    text = error.lower()
    return "http 400" in text and any(name in text for name in ("temperature", "top_p", "top_k"))
