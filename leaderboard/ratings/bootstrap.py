"""The bootstrap: resampled win counts per task, percentile intervals and the ranks they imply.

Items are resampled for per-item scores (battles on one item are correlated, so they move together),
single battles for battle lists and pair counts. Every round is a weighted count, built for all rounds
at once; refitting the rounds is the fitting module's job.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import sparse

from .inputs import BattleStratum, ItemStratum, Stratum

# Sizes that bound temporary memory (cells of float32 arrays).
_PAIR_CHUNK_CELLS = 4_000_000
# float32 holds every multiple of 0.5 below 2**23 exactly, so weighted counts stay exact below this.
_MAX_ITEMS_FLOAT32 = 2**22


def stratum_rng(seed: int, task: str) -> np.random.Generator:
    """Per-task streams keyed by the task's name: a task's draws don't depend on which other tasks exist."""
    return np.random.default_rng([int(seed), zlib.crc32(task.encode("utf-8"))])


def resampled_counts(stratum: Stratum, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(rounds, m, m) float32 split-tie wins of `rounds` resamples of one task's battles."""
    if isinstance(stratum, ItemStratum):
        weights = item_weights(stratum.scores.shape[0], rounds, rng)
        return weighted_item_counts(stratum.scores, weights)
    return _resampled_battles(stratum, rounds, rng)


def item_weights(n: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(rounds, n) float32: how often each item is drawn when resampling n items with replacement."""
    weights = np.empty((rounds, n), dtype=np.float32)
    chunk = max(1, _PAIR_CHUNK_CELLS // max(n, 1))
    for start in range(0, rounds, chunk):
        stop = min(rounds, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        idx += np.arange(stop - start)[:, None] * n
        weights[start:stop] = np.bincount(idx.ravel(), minlength=(stop - start) * n).reshape(-1, n)
    return weights


def weighted_item_counts(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(rounds, m, m) float32 split-tie win counts for each row of item weights.

    Exact: every term is a multiple of 0.5 and the totals stay far below float32's exact range.
    """
    n, m = scores.shape
    if n >= _MAX_ITEMS_FLOAT32:
        raise ValueError(f"too many items in one task for the bootstrap ({n})")
    rounds = weights.shape[0]
    out = np.zeros((rounds, m, m), dtype=np.float32)
    answered = ~np.isnan(scores)
    present = np.flatnonzero(answered.any(axis=0))
    if present.size < 2:
        return out
    sub = scores[:, present]
    sub_answered = answered[:, present]
    total = weights.sum(axis=1)  # items drawn per round
    values = sub[sub_answered]
    if sub_answered.all() and np.all((values == 0.0) | (values == 1.0)):
        # Binary scores, every model answered every item: per item the split-tie win of i over j is
        # (1 + s_i - s_j) / 2, so counts need only the weighted number of correct answers per model.
        correct = weights @ sub.astype(np.float32)
        block = (total[:, None, None] + correct[:, :, None] - correct[:, None, :]) / 2
        diag = np.arange(present.size)
        block[:, diag, diag] = 0.0
        out[:, present[:, None], present[None, :]] = block
        return out
    i0, i1 = np.triu_indices(present.size, k=1)
    ans64 = sub_answered.astype(np.float64)
    copresent = (ans64.T @ ans64)[i0, i1]
    keep = copresent > 0
    i0, i1, copresent = i0[keep], i1[keep], copresent[keep]
    incomplete = np.flatnonzero(copresent < n)
    upper = np.zeros((rounds, i0.size), dtype=np.float32)
    both = np.zeros((rounds, incomplete.size), dtype=np.float32)
    row_chunk = max(1, _PAIR_CHUNK_CELLS // max(i0.size, 1))
    for start in range(0, n, row_chunk):
        rows = slice(start, min(n, start + row_chunk))
        a, b = sub[rows][:, i0], sub[rows][:, i1]
        value = (a > b).astype(np.float32)
        value += np.float32(0.5) * (a == b)  # nan compares unequal: unanswered pairs add nothing
        w = weights[:, rows]
        upper += w @ value
        if incomplete.size:
            ans = sub_answered[rows]
            both += w @ (ans[:, i0[incomplete]] & ans[:, i1[incomplete]]).astype(np.float32)
    games = np.repeat(total[:, None], i0.size, axis=1)
    games[:, incomplete] = both
    out[:, present[i0], present[i1]] = upper
    out[:, present[i1], present[i0]] = games - upper
    return out


def _resampled_battles(stratum: BattleStratum, rounds: int, rng: np.random.Generator) -> np.ndarray:
    # Each battle is resampled independently: pattern counts ~ multinomial(total, frequencies).
    m = stratum.n_models
    total = int(stratum.count.sum())
    draws = rng.multinomial(total, stratum.count / total, size=rounds).astype(np.float64)
    contrib = _battle_contributions(stratum)  # (patterns, m*m) split-tie wins per battle
    flat = np.asarray((contrib.T @ draws.T).T)
    return flat.reshape(rounds, m, m).astype(np.float32)


def _battle_contributions(stratum: BattleStratum) -> sparse.csr_matrix:
    m = stratum.n_models
    a, b, outcome = stratum.a, stratum.b, stratum.outcome
    k = np.arange(a.size)
    won_a, won_b, tie = outcome == 0, outcome == 1, outcome == 2
    rows = np.concatenate([k[won_a], k[won_b], k[tie], k[tie]])
    cells = np.concatenate(
        [
            a[won_a] * m + b[won_a],
            b[won_b] * m + a[won_b],
            a[tie] * m + b[tie],
            b[tie] * m + a[tie],
        ]
    )
    vals = np.concatenate([np.ones(won_a.sum() + won_b.sum()), np.full(2 * tie.sum(), 0.5)])
    return sparse.csr_matrix((vals, (rows, cells)), shape=(a.size, m * m))


def percentile_interval(boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-model (1-level)/2 and (1+level)/2 quantiles of (rounds, m) refitted ratings."""
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return low, high


def ci_rank(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """rank = 1 + number of models whose ci_low is above this model's ci_high (ties share a rank)."""
    low = np.asarray(ci_low, dtype=np.float64)
    high = np.asarray(ci_high, dtype=np.float64)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)
