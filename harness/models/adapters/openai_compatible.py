"""Any server that speaks OpenAI's HTTP API with prompt logprobs (vLLM above all):
`openai-compatible:URL#MODEL[,tokenizer=PATH][,api_key_env=NAME][,max_length=N][,concurrency=N]...`,
or one model served by several replicas, `openai-compatible:URL1|URL2|...#MODEL`: each must serve
the same model, and requests are spread over them (`evalboard.models.replicas`).

- Loglikelihood: ONE `/v1/completions` request per document (per text for rolling loglikelihood,
  in lm-eval's windows: `evalboard.models.rolling`). The choices of a multiple-choice item
  share their context, so the request's `prompt` is a list of token-id prompts (context + choice i)
  with `echo=true, logprobs=1, max_tokens=1`; the server returns every prompt token's logprob and
  the top-1 alternative. Tokenisation happens here, with the model's own tokenizer, exactly as the
  `hf:` adapter (and lm-eval) does it, so both adapters score the very same tokens. Hence only with
  a tokenizer (`tokenizer=`, else the path the server reports as the model's `root`, as vLLM does):
  without one the adapter does not claim loglikelihoods, and `--formulation auto` asks for letters.
- Generation: `/v1/completions` for plain prompts, `/v1/chat/completions` (the server applies the
  chat template) for chat prompts; streamed, to measure time to first token.

The model fingerprint is the served model's identity, never the URL: the model name, what the
server reports about it (`/v1/models`: id, root, parent, max_model_len) and the tokenizer's vocab
and chat template hashes. See docs/vllm.md.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalboard.errors import UserError
from evalboard.models.adapters.base import (
    AdapterSettings,
    Capabilities,
    ModelAdapter,
    ModelSpec,
    ResultCallback,
    register_adapter,
)
from evalboard.models.remote import NonRetryableError, RemotePolicy, RemoteRunner, run_sync
from evalboard.models.replicas import ReplicaPool
from evalboard.models.rolling import WindowSums, rolling_windows
from evalboard.models.spec_options import number_option
from evalboard.models.tokenization import (
    encode,
    encode_pair,
    model_input_text,
    prefix_token,
    render_chat,
    tokenizer_identity,
)
from evalboard.requests import (
    GenerateRequest,
    LoglikelihoodRequest,
    Prompt,
    Response,
    RollingLoglikelihoodRequest,
    Usage,
)

DEFAULT_API_KEY_ENV = "OPENAI_COMPATIBLE_API_KEY"
_OWN_OPTIONS = ("tokenizer", "api_key_env", "max_length")
_IDENTITY_KEYS = ("id", "root", "parent", "max_model_len")


# --------------------------------------------------------------------------- server discovery


def parse_target(target: str) -> tuple[list[str], str | None]:
    """`URL#MODEL` or `URL1|URL2#MODEL` -> (base URLs, each ending in /v1 when no API path was
    given; model or None). `|` cannot occur in a URL unescaped, so it cannot split one."""
    urls, _, model = target.partition("#")
    bases = []
    for url in urls.split("|"):
        parsed = urllib.parse.urlparse(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"openai-compatible target {target!r} must be URL#MODEL or URL1|URL2#MODEL, "
                            "e.g. openai-compatible:http://127.0.0.1:8000/v1#my-model")
        base = url.strip().rstrip("/")
        bases.append(base + "/v1" if parsed.path in ("", "/") else base)
    if len(set(bases)) < len(bases):
        raise UserError(f"openai-compatible target {target!r} names a URL twice")
    return bases, (model.strip() or None)


def fetch_models(base_url: str, api_key: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """`GET /models` (the served names). Unreachable or not an OpenAI-compatible API -> UserError."""
    request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            body = json.load(reply)
    except urllib.error.HTTPError as exc:
        hint = f"; set the key in ${DEFAULT_API_KEY_ENV} (or api_key_env=NAME)" if exc.code in (401, 403) else ""
        raise UserError(f"server at {base_url} answered GET /models with HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach an OpenAI-compatible server at {base_url} ({reason}); "
                        "is it running? (or let the harness start one: vllm:MODEL_PATH)") from None
    except ValueError:
        raise UserError(f"server at {base_url} did not answer GET /models with JSON; "
                        "is the URL the API root (usually ending in /v1)?") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise UserError(f"server at {base_url} sent no model list from GET /models")
    return [entry for entry in data if isinstance(entry, dict)]


# --------------------------------------------------------------------------- loglikelihood plan


@dataclass
class _Document:
    """The requests sharing one context: one HTTP request scores them all."""

    prompts: list[list[int]] = field(default_factory=list)  # unique token prompts
    starts: list[int] = field(default_factory=list)  # first continuation position in each prompt
    members: list[tuple[int, int]] = field(default_factory=list)  # (request index, prompt index)
    results: list[Response] = field(default_factory=list)  # per prompt, filled by the call


@register_adapter
class OpenAICompatibleAdapter(ModelAdapter):
    schemes = ("openai-compatible",)

    def __init__(self, spec: ModelSpec, settings: AdapterSettings) -> None:
        super().__init__(spec, settings)
        base_urls, model = parse_target(spec.target)
        self._connect(base_urls, model, spec.options)

    # -- set-up (shared with the vllm: adapter, which starts the server first)

    def _connect(self, base_urls: list[str], model: str | None, options: dict[str, str]) -> None:
        known = set(_OWN_OPTIONS) | set(RemotePolicy.option_names())
        unknown = sorted(set(options) - known)
        if unknown:
            raise UserError(f"unknown model option(s) {', '.join(unknown)} in {self.spec.raw}; "
                            f"known: {', '.join(sorted(known))}")
        self.base_urls = base_urls
        base_url = self.base_url
        self._api_key = os.environ.get(options.get("api_key_env", DEFAULT_API_KEY_ENV)) or "EMPTY"
        served = fetch_models(base_url, self._api_key)
        names = [str(entry.get("id")) for entry in served]
        if model is None and len(names) == 1:
            model = names[0]
        if model not in names:
            what = f"model {model!r} is not" if model else "no model name was given and several are"
            raise UserError(f"{what} served at {base_url}; served: {', '.join(names) or 'none'} "
                            f"(write openai-compatible:{base_url}#NAME)")
        self.model = model
        self.served = next(entry for entry in served if entry.get("id") == model)
        parent = next((e for e in served if e.get("id") == self.served.get("parent")), None)
        self._base_entry = parent or self.served  # a LoRA entry's parent is the base model
        self._is_vllm = self.served.get("owned_by") == "vllm"
        for other in base_urls[1:]:
            self._check_replica(other)
        self.replicas = ReplicaPool(base_urls)

        self.tokenizer = self._load_tokenizer(options.get("tokenizer"))
        server_len = self.served.get("max_model_len") or self._base_entry.get("max_model_len")
        self.max_length = (number_option(options, "max_length", int, positive=True) or self.settings.max_length
                           or server_len or 2048)
        self.policy = RemotePolicy.from_options(options, self.settings)
        self.runner: RemoteRunner[Any] = RemoteRunner(self.policy, secrets=(self._api_key,))
        self.counters = {"loglikelihood_documents": 0, "loglikelihood_requests": 0, "generate_requests": 0}

    @property
    def base_url(self) -> str:
        """The first URL: the one whose model list names the model."""
        return self.base_urls[0]

    def _check_replica(self, url: str) -> None:
        """Another URL of the same model must serve it as the first does (same id, root, parent and
        length), or its answers would be another model's under this model's fingerprint."""
        mine = {key: self.served.get(key) for key in _IDENTITY_KEYS}
        theirs = next((entry for entry in fetch_models(url, self._api_key) if entry.get("id") == self.model), None)
        if theirs is None or {key: theirs.get(key) for key in _IDENTITY_KEYS} != mine:
            what = "does not serve" if theirs is None else "serves a different"
            raise UserError(f"replica {url} {what} model {self.model!r} (as {self.base_url} serves it); "
                            "every URL of one model must serve the same model")

    def _load_tokenizer(self, explicit: str | None) -> Any:
        """The tokenizer given by `tokenizer=`, else the one at the path the server reports (vLLM's
        `root`). None when neither loads: generation still works, loglikelihood explains."""
        from transformers import AutoTokenizer

        source = explicit or self._base_entry.get("root")
        if not source:
            return None
        try:
            return AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            if explicit:
                raise UserError(f"cannot load tokenizer {explicit!r}: {str(exc).splitlines()[0][:160]}") from None
            return None

    def model_input(self, prompt: Prompt) -> str | None:
        """With the tokenizer, what the server's model reads (vLLM applies the same chat template to
        a chat request); without it, a plain prompt as sent (the server tokenises it)."""
        if self.tokenizer is not None:
            return model_input_text(self.tokenizer, prompt)
        return prompt if isinstance(prompt, str) else None

    # -- description

    @property
    def capabilities(self) -> Capabilities:
        # loglikelihoods are scored on tokens cut here: no tokenizer, none (see the module docstring)
        return Capabilities(loglikelihood=self.tokenizer is not None, generate=True, chat=True)

    def fingerprint(self) -> dict[str, Any]:
        # The URL is where the model lives today, not what it is; leave it out.
        served = {key: self.served.get(key) for key in ("id", "root", "parent", "owned_by")}
        served["max_model_len"] = self.served.get("max_model_len") or self._base_entry.get("max_model_len")
        identity = tokenizer_identity(self.tokenizer) if self.tokenizer is not None else {"tokenizer": None}
        return {"adapter_kind": "openai-compatible", "model": self.model, "served": served,
                "max_length": self.max_length, **identity}

    def describe(self) -> dict[str, Any]:
        described = {"open_weights": True, "server": self.base_url, "served_model": self.model,
                     "cost_per_token_usd": 0.0}
        return {**described, "servers": self.base_urls} if len(self.base_urls) > 1 else described

    def usage_summary(self) -> dict[str, Any]:
        summary = {**self.runner.stats, **self.counters}
        return {**summary, "replicas": self.replicas.stats()} if len(self.base_urls) > 1 else summary

    # -- HTTP plumbing

    def _client(self, base_url: str) -> Any:
        from openai import AsyncOpenAI

        # Retries belong to the RemoteRunner (one policy for every remote adapter), not the SDK.
        return AsyncOpenAI(base_url=base_url, api_key=self._api_key, max_retries=0,
                           timeout=self.policy.timeout_s)

    def _run(self, items: Sequence[Any], make_call: Callable[[ReplicaPool], Callable],
             on_result: ResultCallback) -> None:
        """Run `make_call(replicas)` over items with clients made for this run: an async HTTP client
        is tied to the event loop it was made in, and every run gets a fresh loop."""

        async def go() -> None:
            async with self.replicas.connected(self._client) as replicas:
                await self.runner.run_async(items, make_call(replicas), on_result)

        run_sync(go())

    def _extra_body(self, **values: Any) -> dict[str, Any] | None:
        """vLLM-only request fields; other servers may reject unknown fields, so they get none."""
        extra = {key: value for key, value in values.items() if value is not None}
        return extra if (self._is_vllm and extra) else None

    # -- loglikelihood

    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise UserError(f"scoring loglikelihoods on {self.spec.raw} needs the model's tokenizer; "
                            "add tokenizer=PATH_OR_HUB_ID to the model spec")
        return self.tokenizer

    def _plan(self, requests: Sequence[LoglikelihoodRequest]) -> list[_Document]:
        """Group requests by context: one document (HTTP request) per context."""
        tokenizer = self._require_tokenizer()
        items: list[tuple[object, list[int], list[int]]] = []
        for request in requests:
            context = render_chat(tokenizer, request.context)
            items.append((context, *encode_pair(tokenizer, context, request.continuation)))
        return self._documents(items)

    def _documents(self, items: Sequence[tuple[object, list[int], list[int]]]) -> list[_Document]:
        """(group key, context tokens, continuation tokens) -> one document per key; each
        continuation becomes one token prompt, left-truncated to fit the server (one position
        stays free for the token the server must generate)."""
        limit = self.max_length - 1
        documents: dict[object, _Document] = {}
        for index, (key, context_tokens, continuation) in enumerate(items):
            whole = (context_tokens + continuation)[-limit:]
            start = max(1, len(whole) - len(continuation))  # the first token has no logprob
            document = documents.setdefault(key, _Document())
            try:
                position = document.prompts.index(whole)
            except ValueError:  # a new continuation (duplicates share a prompt)
                position = len(document.prompts)
                document.prompts.append(whole)
                document.starts.append(start)
            document.members.append((index, position))
        return list(documents.values())

    def _score_call(self, replicas: ReplicaPool) -> Callable[[_Document], Any]:
        async def call(document: _Document) -> Response:
            began = time.perf_counter()
            async with replicas.lease() as client:
                reply = await client.completions.create(
                    model=self.model, prompt=document.prompts, max_tokens=1, echo=True, logprobs=1,
                    temperature=0.0,
                    # unique keys in top_logprobs (two tokens may decode to the same string)
                    extra_body=self._extra_body(return_tokens_as_token_ids=True),
                )
            latency = time.perf_counter() - began
            choices = sorted(reply.choices, key=lambda choice: choice.index)
            if len(choices) != len(document.prompts):
                raise NonRetryableError(f"server answered {len(choices)} choices for "
                                        f"{len(document.prompts)} prompts")
            document.results = [
                _score_choice(choice, prompt, start, latency / len(choices))
                for choice, prompt, start in zip(choices, document.prompts, document.starts)
            ]
            return Response(usage=Usage(latency_s=latency))

        return call

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], on_result: ResultCallback) -> None:
        documents = self._plan(requests)
        self.counters["loglikelihood_documents"] += len(documents)
        self.counters["loglikelihood_requests"] += len(requests)
        self._score_documents(documents, on_result)

    def loglikelihood_rolling(
        self, requests: Sequence[RollingLoglikelihoodRequest], on_result: ResultCallback
    ) -> None:
        """lm-eval's rolling windows, sized as its API models size them (max_length - 2: the
        prompt is context + continuation and one more position is generated); one HTTP request
        per text scores all its windows."""
        tokenizer = self._require_tokenizer()
        prefix, window = prefix_token(tokenizer), self.max_length - 2
        items: list[tuple[object, list[int], list[int]]] = []
        owners: list[int] = []
        for index, request in enumerate(requests):
            windows = rolling_windows(encode(tokenizer, request.text), prefix, window)
            items += [(index, context, continuation) for context, continuation in windows]
            owners += [index] * len(windows)
        documents = self._documents(items)
        self.counters["loglikelihood_documents"] += len(documents)
        self.counters["loglikelihood_requests"] += len(items)
        sums = WindowSums(owners, len(requests), on_result)
        sums.deliver_empty()
        self._score_documents(documents, sums)

    def _score_documents(self, documents: list[_Document], on_result: ResultCallback) -> None:
        """One HTTP request per document; each member request gets its prompt's answer."""

        def fan_out(doc_index: int, summary: Response) -> None:
            document = documents[doc_index]
            for request_index, position in document.members:
                if summary.failed:
                    on_result(request_index, Response(error=summary.error, usage=summary.usage))
                else:
                    result = document.results[position]
                    result.usage.attempts = summary.usage.attempts
                    on_result(request_index, Response(logprob=result.logprob, is_greedy=result.is_greedy,
                                                      usage=Usage(**vars(result.usage))))

        self._run(documents, self._score_call, fan_out)

    # -- generation

    def _generate_call(self, replicas: ReplicaPool) -> Callable[[GenerateRequest], Any]:
        async def call(request: GenerateRequest) -> Response:
            async with replicas.lease() as client:
                return await self._generate_once(client, request)

        return call

    async def _generate_once(self, client: Any, request: GenerateRequest) -> Response:
        params = request.params
        common: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            # repeated samples of one prompt must differ, and reproducibly so (as hf:)
            "seed": params.seed * 100_003 + request.sample,
            "stop": list(params.stop) or None,
            "stream": True,
            "stream_options": {"include_usage": True},
            "extra_body": self._extra_body(top_k=params.top_k or None),
        }
        common = {key: value for key, value in common.items() if value is not None}
        began = time.perf_counter()
        first_token_s: float | None = None
        pieces: list[str] = []
        usage = None
        if isinstance(request.context, str):
            stream = await client.completions.create(prompt=self._generation_prompt(request), **common)
        else:
            messages = [{"role": role, "content": content} for role, content in request.context]
            stream = await client.chat.completions.create(messages=messages, **common)
        async for chunk in stream:
            usage = getattr(chunk, "usage", None) or usage
            for choice in chunk.choices or ():
                delta = getattr(choice, "delta", None)
                piece = (delta.content if delta is not None else choice.text) or ""
                if piece and first_token_s is None:
                    first_token_s = time.perf_counter() - began
                pieces.append(piece)
        latency = time.perf_counter() - began
        return Response(text="".join(pieces), usage=Usage(
            input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            output_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_s=latency, time_to_first_token_s=first_token_s, cost_usd=0.0,
        ))

    def _generation_prompt(self, request: GenerateRequest) -> str | list[int]:
        """With the tokenizer at hand, send token ids left-truncated to leave room for the answer,
        exactly what the hf: adapter feeds its model; otherwise the text (the server tokenises)."""
        assert isinstance(request.context, str)
        if self.tokenizer is None:
            return request.context
        limit = max(1, self.max_length - request.params.max_new_tokens)
        return encode(self.tokenizer, request.context)[-limit:]

    def generate(self, requests: Sequence[GenerateRequest], on_result: ResultCallback) -> None:
        self.counters["generate_requests"] += len(requests)
        self._run(list(requests), self._generate_call, on_result)


def _score_choice(choice: Any, prompt: list[int], start: int, latency_s: float) -> Response:
    """Sum of the continuation tokens' logprobs; greedy when each was the top-1 token."""
    logprobs = getattr(choice, "logprobs", None)
    token_logprobs = list(getattr(logprobs, "token_logprobs", None) or [])
    top = list(getattr(logprobs, "top_logprobs", None) or [])
    if len(token_logprobs) < len(prompt) or len(top) < len(prompt):
        raise NonRetryableError(
            f"server returned {len(token_logprobs)} prompt logprobs for a {len(prompt)}-token prompt; "
            "it must support echo=true with logprobs on /v1/completions (vLLM does)")
    span = token_logprobs[start : len(prompt)]
    tops = top[start : len(prompt)]
    # The chosen token's logprob and the top-1's come from one tensor: exact comparison is right.
    is_greedy = all(not alt or value >= max(alt.values()) for value, alt in zip(span, tops))
    return Response(logprob=float(sum(span)), is_greedy=is_greedy,
                    usage=Usage(input_tokens=len(prompt), latency_s=latency_s))
