"""A judge's reply -> the verdict its prompt defines, and two orders' verdicts -> one battle.

Three verdict styles:
- `abc` (FastChat's pairwise prompts): `[[A]]`, `[[B]]`, `[[C]]` (tie).
- `arena-hard`: `[[A>>B]]`, `[[A>B]]`, `[[A=B]]`, `[[B>A]]`, `[[B>>A]]`; `>>` is a strong verdict.
- `mM` (AlpacaEval's clf prompt): the whole reply is the identifier of the better output, `m` (shown
  first) or `M` (shown second); AlpacaEval has no tie.
A reply with no verdict token, or with tokens that disagree, is unparseable: it is recorded as such,
never guessed. Repeating the same token (a judge restating its verdict) is one verdict.

Both orders of a pair make one battle: `evalboard.records.battle_outcome.combine` (re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evalboard.records.battle_outcome import STRONG_WEIGHT, PairOutcome, Winner, combine

__all__ = ["STRONG_WEIGHT", "VERDICT_CHOICES", "PairOutcome", "Verdict", "Winner", "combine", "parse_verdict"]

_ABC = re.compile(r"\[\[([ABC])\]\]")
_ARENA_HARD = re.compile(r"\[\[\s*(A>>B|A>B|A=B|B>A|B>>A|A<<B|A<B|B<A|B<<A|B=A)\s*\]\]")
# the same verdicts written the other way round
_CANONICAL = {"A<<B": "B>>A", "A<B": "B>A", "B<A": "A>B", "B<<A": "A>>B", "B=A": "A=B"}
# verdict -> (score of the answer shown first, strong)
_MEANING: dict[str, tuple[float, bool]] = {
    "A": (1.0, False), "B": (0.0, False), "C": (0.5, False),
    "A>>B": (1.0, True), "A>B": (1.0, False), "A=B": (0.5, False), "B>A": (0.0, False), "B>>A": (0.0, True),
}


# every verdict a style's prompt offers, as the judge would write it (a likelihood judge scores each)
VERDICT_CHOICES: dict[str, tuple[str, ...]] = {
    "abc": ("[[A]]", "[[B]]", "[[C]]"),
    "arena-hard": ("[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]"),
    "mM": ("m", "M"),
}


@dataclass(frozen=True)
class Verdict:
    token: str | None  # None: unparseable
    first_score: float | None  # the share of the win of the answer shown first (A)
    strong: bool = False


def parse_verdict(reply: str, style: str) -> Verdict:
    if style == "mM":
        token = reply.strip()
        return Verdict(token, 1.0 if token == "m" else 0.0) if token in ("m", "M") else Verdict(None, None)
    pattern = _ABC if style == "abc" else _ARENA_HARD
    found = {_CANONICAL.get(m, m) for m in pattern.findall(reply)}
    if len(found) != 1:
        return Verdict(None, None)
    token = found.pop()
    score, strong = _MEANING[token]
    return Verdict(token, score, strong)
