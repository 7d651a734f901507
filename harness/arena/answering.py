"""Ask a model (a candidate or the judge) through the response cache, as a run does: answers already
cached under (model fingerprint, request) are reused, fresh ones are cached the moment they arrive,
so a killed arena resumes without asking anything twice.

A chat model gets the conversation as chat messages; a model without a chat template gets it as
plain text ("User: ... / Assistant: ..."), since the arena's prompts are conversations either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalboard.fingerprint import stable_hash
from evalboard.models.adapters.base import ModelAdapter
from evalboard.records.cache import ResponseCache
from evalboard.requests import (
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    Prompt,
    Response,
    request_key,
)


def as_prompt(messages: Sequence[Message], chat: bool) -> Prompt:
    if chat:
        return tuple(messages)
    parts = [f"{role.capitalize()}: {content}" for role, content in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


def generate_request(adapter: ModelAdapter, messages: Sequence[Message], max_new_tokens: int) -> GenerateRequest:
    """A greedy generate request for the conversation so far."""
    return GenerateRequest(as_prompt(messages, adapter.capabilities.chat), GenerationParams(max_new_tokens=max_new_tokens))


class Asker:
    """One model with the response cache: ask(requests) -> responses, in order."""

    def __init__(self, adapter: ModelAdapter, cache: ResponseCache) -> None:
        self.adapter = adapter
        self.cache = cache
        self.fingerprint = stable_hash(adapter.fingerprint())
        self.fresh = 0

    def ask(self, requests: Sequence[GenerateRequest | LoglikelihoodRequest]) -> list[Response]:
        """Generate or loglikelihood requests (a likelihood judge's), each kind sent as one call."""
        unique = {request_key(r): r for r in requests}
        found = self.cache.get_many(self.fingerprint, unique.values())
        for kind in ("generate", "loglikelihood"):
            missing = [r for key, r in unique.items() if key not in found and r.kind == kind]
            if not missing:
                continue

            def on_result(index: int, response: Response, missing: list = missing) -> None:
                request = missing[index]
                found[request_key(request)] = response
                self.cache.put(self.fingerprint, request, response)
                self.fresh += 1

            getattr(self.adapter, kind)(missing, on_result)
            lost = [r for r in missing if request_key(r) not in found]
            if lost:
                raise RuntimeError(f"adapter {self.adapter.spec.raw} left {len(lost)} {kind} requests unanswered")
        return [found[request_key(r)] for r in requests]
