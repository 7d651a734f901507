"""Elo-scale Bradley–Terry ratings from per-item battles, with bootstrap confidence intervals.

Every item that two models both answered is a battle: the higher score wins, equal scores tie, and
a tie counts half a win for each side. Bradley–Terry gives P(i beats j) = 1 / (1 + 10^((R_j - R_i)/400)),
so 400 rating points is an odds factor of 10. Ratings are fitted by maximum likelihood (Newton's
method with a tiny L2 prior that keeps undefeated models finite) and anchored so the mean rating is
1000 (or a chosen model is 1000). Confidence intervals come from resampling items with replacement;
each round is a weighted sum of per-item contributions, computed for all rounds at once as one matrix
product, and the rounds are refitted together, warm-started at the full-data fit. See docs/ratings.md.

Inputs (pandas DataFrames):
- per-item scores: columns `model`, `item_key`, `score` and optionally `task`. With a `task` column an
  item is the pair (task, item_key), and the bootstrap resamples items within each task.
- battles: columns `model_a`, `model_b`, `winner` ("a", "b" or "tie") and optionally `task`.

Modules: `options` (RatingOptions, the settings of a run), `inputs` (inputs -> per-task strata and
exact counts), `fitting` (the maximum-likelihood fit), `bootstrap` (resampled counts, intervals, CI
ranks). This file assembles them into the rating tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from evalboard.errors import UserError

from .bootstrap import ci_rank, percentile_interval, resampled_counts, stratum_rng
from .fitting import ELO_PER_NAT, fit_bootstrap, fit_bradley_terry, fit_point, to_elo
from .inputs import (
    BATTLE_COLUMNS,
    SCORE_COLUMNS,
    PairwiseCounts,
    Stratum,
    battles_from_scores,
    counts_from_battles,
    pairwise_counts,
    read_strata,
)
from .options import DEFAULT_BASE, DEFAULT_OPTIONS, DEFAULT_PRIOR, RatingOptions

__all__ = [
    "BATTLE_COLUMNS",
    "DEFAULT_BASE",
    "DEFAULT_OPTIONS",
    "DEFAULT_PRIOR",
    "ELO_PER_NAT",
    "OVERALL",
    "RATING_COLUMNS",
    "SCORE_COLUMNS",
    "PairwiseCounts",
    "RatingOptions",
    "battles_from_scores",
    "bootstrap_ratings",
    "ci_rank",
    "counts_from_battles",
    "fit_bradley_terry",
    "leaderboard_ratings",
    "pairwise_counts",
]

OVERALL = "(overall)"  # `task` value of the pooled rows in leaderboard_ratings
RATING_COLUMNS = ["model", "rating", "ci_low", "ci_high", "rank"]


def bootstrap_ratings(data: pd.DataFrame | PairwiseCounts, options: RatingOptions = DEFAULT_OPTIONS) -> pd.DataFrame:
    """Ratings with percentile bootstrap CIs: DataFrame[model, rating, ci_low, ci_high, rank].

    `data` is one of
    - per-item scores (model, item_key, score[, task]): items are resampled with replacement, within
      each task when there is a task column (battles of all tasks pooled);
    - battles (model_a, model_b, winner[, task]) or PairwiseCounts: each battle is resampled on its
      own. That ignores that battles on the same item are correlated, so these CIs are typically
      narrower than the item bootstrap's: prefer per-item scores when you have them.
    `rating` is the fit on all the data; ci_low/ci_high are the (1-level)/2 and (1+level)/2 quantiles
    of `options.rounds` refits; rank = 1 + the number of models whose ci_low exceeds this model's
    ci_high. With rounds=0 the CIs are nan and rank = 1 + the number of strictly higher ratings. Sorted
    by rating, best first. Deterministic for a given seed and independent of row order.
    """
    return _ratings_tables(data, options, per_task=False)[-1][1]


def leaderboard_ratings(data: pd.DataFrame, options: RatingOptions = DEFAULT_OPTIONS) -> pd.DataFrame:
    """Per-task ratings and the overall rating: DataFrame[task, model, rating, ci_low, ci_high, rank].

    One block per task (the models that have scores in it), then a block with task == OVERALL fitted on
    the battles of all tasks pooled (each item of each task is one battle per pair, so larger tasks
    weigh more). The overall bootstrap resamples items within each task, reusing the per-task rounds,
    so the pooled rounds cost nothing extra. A task's block equals bootstrap_ratings on that task's rows
    (task column kept: each task's random stream is keyed by the seed and the task's name).
    """
    tables = _ratings_tables(data, options, per_task=True)
    blocks = [table.assign(task=task)[["task", *RATING_COLUMNS]] for task, table in tables]
    return pd.concat(blocks, ignore_index=True)


def _ratings_tables(
    data: pd.DataFrame | PairwiseCounts, options: RatingOptions, *, per_task: bool
) -> list[tuple[str, pd.DataFrame]]:
    """(task, table) per task when `per_task`, then (OVERALL, table) on every task's battles pooled."""
    models, strata = read_strata(data)
    if per_task and any(stratum.task == OVERALL for stratum in strata):
        raise UserError(f"a task is named {OVERALL!r}, the name of the pooled ratings; rename that task")
    m, rounds = len(models), options.rounds
    pooled_point = np.zeros((m, m))
    pooled_rounds = np.zeros((rounds, m, m), dtype=np.float32) if rounds else None
    pooled_present: set[int] = set()
    tables = []
    for stratum in strata:
        point, counts = _stratum_counts(stratum, options)
        present = stratum.present
        if per_task:
            tables.append((stratum.task, _rate(models, point, counts, present, stratum.task, options)))
        pooled_point += point
        if pooled_rounds is not None and counts is not None:
            pooled_rounds += counts
        pooled_present.update(present.tolist())
    overall = np.array(sorted(pooled_present), dtype=np.int64)
    tables.append((OVERALL, _rate(models, pooled_point, pooled_rounds, overall, OVERALL, options)))
    return tables


def _stratum_counts(stratum: Stratum, options: RatingOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """One task's split-tie wins, and its bootstrap rounds' (None without rounds)."""
    wins, ties = stratum.point_counts()
    point = wins + ties / 2.0
    if not options.rounds:
        return point, None
    return point, resampled_counts(stratum, options.rounds, stratum_rng(options.seed, stratum.task))


def _rate(
    models: list[str],
    point: np.ndarray,
    rounds_counts: np.ndarray | None,
    present: np.ndarray,
    task: str,
    options: RatingOptions,
) -> pd.DataFrame:
    """The table of the `present` models: point fit, bootstrap CIs and ranks, best first."""
    names = [models[k] for k in present]
    sub = point[np.ix_(present, present)]
    anchor = _anchor_index(names, task, options)
    theta = fit_point(sub, options)
    rating = to_elo(theta, anchor, options.base)
    if rounds_counts is not None:
        boot_counts = rounds_counts[:, present[:, None], present[None, :]]
        boot = to_elo(fit_bootstrap(boot_counts, sub, theta, options), anchor, options.base)
        low, high = percentile_interval(boot, options.level)
        rank = ci_rank(low, high)
    else:
        low = high = np.full(len(names), np.nan)
        rank = 1 + (rating[None, :] > rating[:, None]).sum(axis=1)
    table = pd.DataFrame({"model": names, "rating": rating, "ci_low": low, "ci_high": high, "rank": rank})
    table = table.sort_values(["rating", "model"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)


def _anchor_index(names: list[str], task: str, options: RatingOptions) -> int | None:
    """Where the anchor model sits among a table's models; a user error when it has no battles there."""
    if options.anchor is None:
        return None
    if options.anchor not in names:
        where = "" if task in ("", OVERALL) else f" in task {task!r}"
        raise UserError(
            f"anchor model {options.anchor!r} has no battles{where}; anchor on a model that was evaluated "
            f"on every task, e.g. one of {names[:5]}, or leave the anchor out (mean rating = {options.base:g})"
        )
    return names.index(options.anchor)
