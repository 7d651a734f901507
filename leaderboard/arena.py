"""Arena ratings: an arena record's pair counts -> Bradley–Terry ratings on the Elo scale, with
bootstrap intervals and CI ranks (the same fit as the benchmark-item ratings, see docs/ratings.md),
and win rates against a baseline.

FastChat's settings are the defaults: ties count half a win for each side, 400 points per factor of
10 in odds, and when `mixtral-8x7b-instruct-v0.1` is among the models it is anchored at 1114 (as
FastChat's elo_analysis anchors it); otherwise the mean rating is 1000. Battles are resampled one by
one (each battle is an independent vote), as FastChat's bootstrap does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from evalboard.leaderboard.ratings import PairwiseCounts, RatingOptions, bootstrap_ratings
from evalboard.records.arena_record import ArenaRecord

FASTCHAT_ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


def arena_counts(record: ArenaRecord) -> PairwiseCounts:
    """The record's battles as PairwiseCounts over its sorted models."""
    models = record.models
    index = {name: k for k, name in enumerate(models)}
    m = len(models)
    wins, ties = np.zeros((m, m)), np.zeros((m, m))
    for row in record.counts:
        a, b = index[row.model_a], index[row.model_b]
        wins[a, b] += row.a_wins
        wins[b, a] += row.b_wins
        ties[a, b] += row.ties
        ties[b, a] += row.ties
    return PairwiseCounts(models, wins, ties)


def rating_options(record: ArenaRecord, anchor: tuple[str, float] | None = None, rounds: int = 1000,
                   seed: int = 0) -> RatingOptions:
    """FastChat's anchor when its model is present and no other anchor is asked for."""
    if anchor is None and FASTCHAT_ANCHOR[0] in record.models:
        anchor = FASTCHAT_ANCHOR
    if anchor is None:
        return RatingOptions(rounds=rounds, seed=seed)
    return RatingOptions(rounds=rounds, seed=seed, anchor=anchor[0], base=anchor[1])


def arena_ratings(record: ArenaRecord, anchor: tuple[str, float] | None = None, rounds: int = 1000,
                  seed: int = 0) -> pd.DataFrame:
    """DataFrame[model, rating, ci_low, ci_high, rank, battles], best first."""
    counts = arena_counts(record)
    table = bootstrap_ratings(counts, rating_options(record, anchor, rounds, seed))
    played = dict(zip(counts.models, counts.wins.sum(axis=1) + counts.wins.sum(axis=0) + counts.ties.sum(axis=1)))
    table["battles"] = [int(played[m]) for m in table["model"]]
    return table


def win_rates(record: ArenaRecord) -> pd.DataFrame:
    """The win-rate matrix (ties half): rows beat columns this share of their battles (nan: never met)."""
    counts = arena_counts(record)
    games = counts.wins + counts.wins.T + counts.ties
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(games > 0, counts.split_ties() / games, np.nan)
    return pd.DataFrame(share, index=counts.models, columns=counts.models)


def win_rate_vs(record: ArenaRecord, baseline: str, rounds: int = 1000, level: float = 0.95,
                seed: int = 0) -> pd.DataFrame:
    """Each model's win rate against `baseline` (ties half), with a percentile bootstrap interval that
    resamples its battles against the baseline: DataFrame[win_rate, ci_low, ci_high, battles] by model."""
    rng = np.random.default_rng(seed)
    rows = {}
    for row in record.counts:
        if baseline not in (row.model_a, row.model_b) or row.model_a == row.model_b:
            continue
        model, wins, losses = (row.model_b, row.b_wins, row.a_wins) if row.model_a == baseline \
            else (row.model_a, row.a_wins, row.b_wins)
        n = int(wins + losses + row.ties)
        if n == 0:
            continue
        shares = np.array([wins, row.ties, losses]) / n
        draws = rng.multinomial(n, shares, size=rounds) if rounds else np.empty((0, 3))
        boot = (draws[:, 0] + draws[:, 1] / 2) / n
        alpha = (1 - level) / 2
        low, high = (np.quantile(boot, [alpha, 1 - alpha]) if rounds else (np.nan, np.nan))
        rows[model] = {"win_rate": (wins + row.ties / 2) / n, "ci_low": float(low), "ci_high": float(high), "battles": n}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["win_rate", "ci_low", "ci_high", "battles"])
