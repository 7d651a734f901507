"""The one model interface (`ModelAdapter`), model specs, and the adapter registry."""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from evalboard.errors import UserError
from evalboard.requests import (
    Capabilities,
    GenerateRequest,
    LoglikelihoodRequest,
    Prompt,
    Response,
    RollingLoglikelihoodRequest,
)

# Called once per finished request with its index in the submitted batch, so callers can
# persist results as they arrive (a killed run then loses nothing that had completed).
ResultCallback = Callable[[int, Response], None]


@dataclass(frozen=True)
class ModelSpec:
    """One string a user can type: `scheme:target[,key=value...]`, e.g. `hf:gpt2,dtype=float32`."""

    raw: str
    scheme: str
    target: str
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        scheme, sep, rest = text.partition(":")
        if not sep or not scheme or not rest:
            raise UserError(
                f"model spec {text!r} is not of the form SCHEME:TARGET; "
                f"known schemes: {', '.join(known_schemes())} (e.g. hf:PATH_OR_ID)"
            )
        target, *pairs = rest.split(",")
        options: dict[str, str] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                raise UserError(f"model option {pair!r} in {text!r} is not KEY=VALUE")
            options[key.strip()] = value.strip()
        return cls(raw=text, scheme=scheme.strip(), target=target.strip(), options=options)


@dataclass
class AdapterSettings:
    """Run-level knobs every adapter may use; options in the model spec override them."""

    batch_size: int | str = 8  # or "auto": the adapter finds the largest that fits
    device: str = "auto"
    dtype: str = "auto"
    concurrency: int = 8
    max_length: int | None = None


class ModelAdapter(ABC):
    """A model that answers the three request kinds. Knows nothing about tasks."""

    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ModelSpec, settings: AdapterSettings) -> None:
        self.spec = spec
        self.settings = settings

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that identifies the model's behaviour (weights hash, adapter hash, dtype,
        chat template...). Its hash keys the response cache."""

    def describe(self) -> dict[str, Any]:
        """Facts for the run record and leaderboard (open/closed, parameter count, ...)."""
        return {}

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], on_result: ResultCallback
    ) -> None:
        raise UserError(f"model {self.spec.raw} cannot score loglikelihoods (no logprobs)")

    def loglikelihood_rolling(
        self, requests: Sequence[RollingLoglikelihoodRequest], on_result: ResultCallback
    ) -> None:
        raise UserError(f"model {self.spec.raw} cannot score rolling loglikelihoods")

    def generate(self, requests: Sequence[GenerateRequest], on_result: ResultCallback) -> None:
        raise UserError(f"model {self.spec.raw} cannot generate text")

    def model_input(self, prompt: Prompt) -> str | None:
        """The exact text the model receives for a prompt (after its chat template, with the special
        tokens its tokenizer adds), where this side renders it; None where the provider's server
        renders it out of sight (hosted chat APIs)."""
        return None

    def usage_summary(self) -> dict[str, Any]:
        """Run-level counters (requests sent, retries, failures...)."""
        return {}

    def close(self) -> None:  # noqa: B027 - a default that adapters without resources keep
        """Release the model or server. Safe to call twice."""


_REGISTRY: dict[str, type[ModelAdapter]] = {}
_discovered = False


def register_adapter(cls: type[ModelAdapter]) -> type[ModelAdapter]:
    for scheme in cls.schemes:
        _REGISTRY[scheme] = cls
    return cls


def _discover() -> None:
    """Import every adapter module once (importing one directly must not hide the others)."""
    global _discovered
    if _discovered:
        return
    import evalboard.models.adapters as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    _discovered = True


def known_schemes() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def check_scheme(spec: ModelSpec) -> ModelSpec:
    """The spec, if an adapter serves its scheme; else a one-line UserError listing those that do."""
    if spec.scheme not in known_schemes():
        raise UserError(
            f"unknown model scheme {spec.scheme!r} in {spec.raw!r}; "
            f"use one of: {', '.join(known_schemes())}"
        )
    return spec


def load_adapter(spec: ModelSpec | str, settings: AdapterSettings | None = None) -> ModelAdapter:
    spec = check_scheme(ModelSpec.parse(spec) if isinstance(spec, str) else spec)
    return _REGISTRY[spec.scheme](spec, settings or AdapterSettings())
