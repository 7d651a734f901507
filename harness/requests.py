"""The three request kinds every adapter understands, and what comes back.

A request knows nothing about tasks; an adapter knows nothing about tasks either.
A prompt is either plain text or a chat conversation (a tuple of role/content messages).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal, Union

Message = tuple[str, str]  # (role, content); a tuple so requests stay hashable
Prompt = Union[str, tuple[Message, ...]]
RequestKind = Literal["loglikelihood", "loglikelihood_rolling", "generate"]
# How a multiple-choice task is asked: by loglikelihood, by a generated letter, or by capability.
FormulationChoice = Literal["auto", "loglikelihood", "generative"]


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 means no top-k
    stop: tuple[str, ...] = ()
    seed: int = 1234

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class Capabilities:
    """What a model can answer: the contract a task's formulation is chosen against."""

    loglikelihood: bool  # can score a continuation (needs logprobs)
    generate: bool
    chat: bool  # understands chat-formatted prompts


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context), and whether the continuation is the greedy one."""

    context: Prompt
    continuation: str
    kind: RequestKind = field(default="loglikelihood", init=False)


@dataclass(frozen=True)
class RollingLoglikelihoodRequest:
    """log P(text) over the whole text, windowed to the model's length."""

    text: str
    kind: RequestKind = field(default="loglikelihood_rolling", init=False)


@dataclass(frozen=True)
class GenerateRequest:
    """Generate a continuation of the prompt. `sample` numbers repeated samples of one prompt."""

    context: Prompt
    params: GenerationParams = GenerationParams()
    sample: int = 0
    kind: RequestKind = field(default="generate", init=False)


Request = Union[LoglikelihoodRequest, RollingLoglikelihoodRequest, GenerateRequest]


@dataclass
class Usage:
    """What one request cost: tokens, time, dollars. Zero where unknown."""

    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    cost_usd: float = 0.0
    attempts: int = 1


@dataclass
class Response:
    """The answer to one request. Exactly one of the payload fields is meaningful for a kind."""

    logprob: float | None = None  # loglikelihood kinds
    is_greedy: bool | None = None  # loglikelihood only
    text: str | None = None  # generate
    usage: Usage = field(default_factory=Usage)
    error: str | None = None  # set when the request failed after all retries

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Response:
        usage = Usage(**data.get("usage", {}))
        return cls(
            logprob=data.get("logprob"),
            is_greedy=data.get("is_greedy"),
            text=data.get("text"),
            usage=usage,
            error=data.get("error"),
        )


def request_to_json(request: Request) -> dict:
    return asdict(request)


def request_key(request: Request) -> str:
    """A stable content hash of a request: the response cache's key (with the model fingerprint)."""
    blob = json.dumps(request_to_json(request), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def prompt_text(prompt: Prompt) -> str:
    """A readable rendering of a prompt for logs (not what any model sees)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"<|{role}|>\n{content}" for role, content in prompt)
