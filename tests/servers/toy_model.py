"""The deterministic "model" behind the test servers: whitespace-led word pieces are its tokens,
and its answer is a pure function of the request, so tests can predict every byte."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_PIECE = re.compile(r"\s*\S+|\s+$")

# A responder maps the conversation (role, content) pairs to the full answer text.
Responder = Callable[[Sequence[tuple[str, str]]], str]


def tokens(text: str) -> list[str]:
    """Tokens: every maximal 'optional whitespace + non-whitespace run' (GPT-2-like pieces)."""
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    return len(tokens(text))


def echo_responder(messages: Sequence[tuple[str, str]]) -> str:
    """Default answer: 'echo: ' + the last user message."""
    last_user = next((content for role, content in reversed(messages) if role == "user"), "")
    return f"echo: {last_user}"


@dataclass(frozen=True)
class Completion:
    text: str
    output_tokens: int
    stopped_by: str | None  # the stop sequence that ended it, if any
    finish: str  # "stop" (natural end or stop sequence) or "length"
    pieces: tuple[str, ...]  # the answer as streamed, one token per piece


def complete(answer: str, max_tokens: int | None, stop: Sequence[str] = ()) -> Completion:
    """Apply a max-token budget and stop sequences to the full answer, as a real server would."""
    pieces = tokens(answer)
    finish = "stop"
    if max_tokens is not None and len(pieces) > max_tokens:
        pieces, finish = pieces[:max_tokens], "length"
    text = "".join(pieces)
    stopped_by = None
    cut = min(((text.find(s), s) for s in stop if s and s in text), default=None)
    if cut is not None:
        text, stopped_by, finish = text[: cut[0]], cut[1], "stop"
        pieces = tokens(text)
    return Completion(text, len(pieces), stopped_by, finish, tuple(pieces))


def toy_logprob(piece: str) -> float:
    """A fixed log-probability per token (for /v1/completions logprobs): -0.25 per character."""
    return -0.25 * len(piece.strip() or piece)
