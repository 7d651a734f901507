"""Recorded judgments -> battles (per-pair counts) and the judge's quality figures.

A judged pair is one (model_a, model_b, prompt turn) judged in both orders by one judge; its two
verdicts become one battle as `verdicts.combine` says. The first judge's battles are the arena's; a
second judge is compared with it pair by pair.
"""

from __future__ import annotations

from collections import defaultdict

from evalboard.records.arena_record import JudgeQuality, Judgment, PairCounts

from .verdicts import PairOutcome, combine

PairKey = tuple[str, str, str]  # (model_a, model_b, prompt_id)


def outcomes(judgments: list[Judgment], judge: str) -> tuple[dict[PairKey, PairOutcome], int, int]:
    """(pair -> outcome for pairs judged in both orders, single judgments, unparseable ones)."""
    orders: dict[PairKey, dict[str, Judgment]] = defaultdict(dict)
    total = unparseable = 0
    for j in judgments:
        if j.judge != judge:
            continue
        orders[(j.model_a, j.model_b, j.prompt_id)][j.order] = j
        total += 1
        unparseable += j.verdict is None
    out = {}
    for key, both in orders.items():
        if set(both) == {"ab", "ba"}:
            out[key] = combine((both["ab"].score_a, both["ab"].strong), (both["ba"].score_a, both["ba"].strong))
    return out, total, unparseable


def pair_counts(results: dict[PairKey, PairOutcome]) -> list[PairCounts]:
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for (a, b, _), outcome in results.items():
        if outcome.winner is None:
            continue
        winner = outcome.winner
        if a > b:
            a, b = b, a
            winner = {"a": "b", "b": "a"}.get(winner, winner)  # type: ignore[assignment]
        totals[(a, b)][{"a": 0, "b": 1, "tie": 2}[winner]] += outcome.weight
    return [PairCounts(model_a=a, model_b=b, a_wins=w[0], b_wins=w[1], ties=w[2]) for (a, b), w in sorted(totals.items())]


def judge_quality(judgments: list[Judgment], judges: list[str]) -> list[JudgeQuality]:
    per_judge = {judge: outcomes(judgments, judge) for judge in judges}
    qualities = []
    for judge, (results, total, unparseable) in per_judge.items():
        parsed = [o for o in results.values() if o.consistent is not None]
        agreement = {}
        for other, (other_results, _, _) in per_judge.items():
            if other == judge:
                continue
            none = PairOutcome(None, 0, None)
            shared = [k for k, o in results.items() if o.winner is not None and other_results.get(k, none).winner is not None]
            if shared:
                agreement[other] = sum(results[k].winner == other_results[k].winner for k in shared) / len(shared)
        qualities.append(JudgeQuality(
            judge=judge, pairs=len(parsed),
            consistent=sum(bool(o.consistent) for o in parsed) / len(parsed) if parsed else float("nan"),
            ties=sum(o.winner == "tie" for o in parsed) / len(parsed) if parsed else float("nan"),
            unparseable=unparseable / total if total else float("nan"),
            agreement=agreement,
        ))
    return qualities
