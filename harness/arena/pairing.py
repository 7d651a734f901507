"""Which pairs of candidates meet.

- `all`: every pair (a few models).
- `baseline`: every candidate against the baseline only (Arena-Hard / AlpacaEval win rates).
- `place`: newcomers against the models already in the arena, `opponents` of them each, spread evenly
  over the current rating order (best, worst and between, so the newcomer's rating is bracketed);
  old pairs are never re-judged, so adding a model costs only its own battles.
"""

from __future__ import annotations

from itertools import combinations
from typing import Literal

from evalboard.errors import UserError

Pairing = Literal["all", "baseline", "place"]


def select_pairs(scheme: Pairing, candidates: list[str], *, baseline: str | None = None,
                 ranked_existing: list[str] | None = None, opponents: int = 4) -> list[tuple[str, str]]:
    if scheme == "all":
        if len(candidates) < 2:
            raise UserError("an arena with all pairs needs at least two candidates (--models A,B or a --baseline)")
        return list(combinations(candidates, 2))
    if scheme == "baseline":
        if baseline is None:
            raise UserError("--pairs baseline needs --baseline NAME (a prompt set's baseline or a model spec)")
        return [(c, baseline) for c in candidates if c != baseline]
    existing = [m for m in (ranked_existing or []) if m not in candidates]
    if not existing:
        raise UserError("--pairs place adds models to an existing arena: none of its models are left to play; "
                        "build it first with --pairs all")
    k = min(max(1, opponents), len(existing))
    picks = sorted({round(i * (len(existing) - 1) / max(k - 1, 1)) for i in range(k)})
    return [(c, existing[p]) for c in candidates for p in picks]
