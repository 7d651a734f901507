"""A judge's reply -> the verdict its prompt defines, and two orders' verdicts -> one battle.

Two verdict styles:
- `abc` (FastChat's pairwise prompts, AlpacaEval-style): `[[A]]`, `[[B]]`, `[[C]]` (tie).
- `arena-hard`: `[[A>>B]]`, `[[A>B]]`, `[[A=B]]`, `[[B>A]]`, `[[B>>A]]`; `>>` is a strong verdict.
A reply with no verdict token, or with tokens that disagree, is unparseable: it is recorded as such,
never guessed. Repeating the same token (a judge restating its verdict) is one verdict.

Both orders of a pair are combined into one battle: when they agree (after undoing the swap) the
battle goes that way, and when both orders call it strong it counts STRONG_WEIGHT times, Arena-Hard's
weight for a strong verdict; when they disagree it is a tie (the judge's position bias decided it);
when either is unparseable there is no battle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

STRONG_WEIGHT = 3  # Arena-Hard counts a strong verdict as three battles
Winner = Literal["a", "b", "tie"]

_ABC = re.compile(r"\[\[([ABC])\]\]")
_ARENA_HARD = re.compile(r"\[\[\s*(A>>B|A>B|A=B|B>A|B>>A|A<<B|A<B|B<A|B<<A|B=A)\s*\]\]")
# the same verdicts written the other way round
_CANONICAL = {"A<<B": "B>>A", "A<B": "B>A", "B<A": "A>B", "B<<A": "A>>B", "B=A": "A=B"}
# verdict -> (score of the answer shown first, strong)
_MEANING: dict[str, tuple[float, bool]] = {
    "A": (1.0, False), "B": (0.0, False), "C": (0.5, False),
    "A>>B": (1.0, True), "A>B": (1.0, False), "A=B": (0.5, False), "B>A": (0.0, False), "B>>A": (0.0, True),
}


@dataclass(frozen=True)
class Verdict:
    token: str | None  # None: unparseable
    first_score: float | None  # the share of the win of the answer shown first (A)
    strong: bool = False


def parse_verdict(reply: str, style: str) -> Verdict:
    pattern = _ABC if style == "abc" else _ARENA_HARD
    found = {_CANONICAL.get(m, m) for m in pattern.findall(reply)}
    if len(found) != 1:
        return Verdict(None, None)
    token = found.pop()
    score, strong = _MEANING[token]
    return Verdict(token, score, strong)


@dataclass(frozen=True)
class PairOutcome:
    winner: Winner | None  # None: no battle (an order was unparseable)
    weight: int
    consistent: bool | None  # None when an order was unparseable


def combine(first: tuple[float | None, bool], second: tuple[float | None, bool]) -> PairOutcome:
    """Both orders' (model_a's share of the win, strong), each already read from model_a's side."""
    (score_1, strong_1), (score_2, strong_2) = first, second
    if score_1 is None or score_2 is None:
        return PairOutcome(None, 0, None)
    if score_1 != score_2:
        return PairOutcome("tie", 1, False)
    winner: Winner = "a" if score_1 == 1.0 else "b" if score_1 == 0.0 else "tie"
    weight = STRONG_WEIGHT if strong_1 and strong_2 else 1
    return PairOutcome(winner, weight, True)
