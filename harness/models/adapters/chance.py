"""`chance:SEED`: a chance-level baseline that answers without looking at the prompt.

Loglikelihoods are pseudo-random (a hash of the seed and the request), so multiple-choice accuracy
sits at chance; generations are empty. It gives the leaderboard a floor to compare against."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from evalboard.models.adapters.base import Capabilities, ModelAdapter, ResultCallback, register_adapter
from evalboard.requests import (
    GenerateRequest,
    LoglikelihoodRequest,
    Response,
    RollingLoglikelihoodRequest,
    request_key,
)


@register_adapter
class ChanceBaseline(ModelAdapter):
    schemes = ("chance",)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(loglikelihood=True, generate=True, chat=True)

    def fingerprint(self) -> dict[str, Any]:
        return {"adapter_kind": "chance", "seed": self.spec.target}

    def describe(self) -> dict[str, Any]:
        return {"open_weights": True, "parameters": 0, "baseline": True}

    def _uniform(self, request: Any) -> float:
        digest = hashlib.sha256(f"{self.spec.target}:{request_key(request)}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], on_result: ResultCallback) -> None:
        for index, request in enumerate(requests):
            # scaled by length so acc_norm (per-character) is at chance too
            on_result(index, Response(logprob=-self._uniform(request) * max(len(request.continuation), 1),
                                      is_greedy=False))

    def loglikelihood_rolling(self, requests: Sequence[RollingLoglikelihoodRequest], on_result: ResultCallback) -> None:
        for index, request in enumerate(requests):
            on_result(index, Response(logprob=-self._uniform(request) * max(len(request.text), 1)))

    def generate(self, requests: Sequence[GenerateRequest], on_result: ResultCallback) -> None:
        for index in range(len(requests)):
            on_result(index, Response(text=""))
