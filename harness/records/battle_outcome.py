"""Two orders' verdicts on one pair -> one battle (shared by the arena's tally and the leaderboard's
style control, so both count a battle the same way).

When the orders agree (after undoing the swap) the battle goes that way; when they disagree it is a tie
(the judge's position bias decided it); when either is unparseable there is no battle. Its weight is
Arena-Hard's per-game weight averaged over the two orders: Arena-Hard scores each order as its own game
and counts a `>>` game STRONG_WEIGHT times, so both strong weigh 3, one strong 2, none 1 (Arena-Hard's
6 : 4 : 2 with one prompt kept as one unit, so the battle bootstrap does not count a prompt twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STRONG_WEIGHT = 3  # Arena-Hard counts a strong verdict as three games
Winner = Literal["a", "b", "tie"]


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
        return PairOutcome("tie", _weight(strong_1, strong_2), False)
    winner: Winner = "a" if score_1 == 1.0 else "b" if score_1 == 0.0 else "tie"
    return PairOutcome(winner, _weight(strong_1, strong_2), True)


def _weight(strong_1: bool, strong_2: bool) -> int:
    return ((STRONG_WEIGHT if strong_1 else 1) + (STRONG_WEIGHT if strong_2 else 1)) // 2
