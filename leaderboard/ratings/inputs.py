"""Per-item scores, battles or pair counts -> per-task strata and their exact win/tie counts.

Everything downstream (the fit, the bootstrap) sees only strata over one global, sorted model list,
so no result depends on the form the battles came in or on the order of the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from evalboard.errors import UserError

SCORE_COLUMNS = ("model", "item_key", "score")
BATTLE_COLUMNS = ("model_a", "model_b", "winner")
WINNERS = ("a", "b", "tie")  # a battle's outcome code is its index here

# Up to this many distinct score values, point counts use one matrix product per value.
_MAX_LEVELS_FOR_MATMUL = 32


class PairwiseCounts(NamedTuple):
    """Aggregated battles: wins[i, j] = battles model i won against model j; ties symmetric.

    Unpacks as (models, wins, ties).
    """

    models: list[str]
    wins: np.ndarray
    ties: np.ndarray

    def split_ties(self) -> np.ndarray:
        """Wins with each tie counted half a win for both sides (the input of fit_bradley_terry)."""
        return self.wins + self.ties / 2.0


@dataclass
class ItemStratum:
    """One task's score matrix over the global model list (nan = the model did not answer)."""

    task: str
    item_keys: np.ndarray
    scores: np.ndarray  # (n_items, n_models) float64

    @property
    def present(self) -> np.ndarray:
        return np.flatnonzero((~np.isnan(self.scores)).any(axis=0))

    def point_counts(self) -> tuple[np.ndarray, np.ndarray]:
        return item_point_counts(self.scores)


@dataclass
class BattleStratum:
    """One task's battles as distinct (a, b, outcome) patterns with multiplicities."""

    task: str
    n_models: int
    a: np.ndarray  # model index
    b: np.ndarray
    outcome: np.ndarray  # 0: a won, 1: b won, 2: tie
    count: np.ndarray  # how many battles have this pattern

    @classmethod
    def canonical(
        cls, task: str, n_models: int, a: np.ndarray, b: np.ndarray, outcome: np.ndarray, count: np.ndarray
    ) -> BattleStratum:
        """Patterns with a < b (swapping sides flips the outcome), merged and sorted, so that the same
        battles give the same patterns (and the same bootstrap draws) however they were listed."""
        swap = a > b
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        outcome = np.where(swap & (outcome < 2), 1 - outcome, outcome)
        keys, inverse = np.unique((a * n_models + b) * 3 + outcome, return_inverse=True)
        merged = np.bincount(inverse.ravel(), weights=count, minlength=keys.size)
        keep = merged > 0
        keys, merged = keys[keep], merged[keep]
        pair, outcome = np.divmod(keys, 3)
        a, b = np.divmod(pair, n_models)
        return cls(task, n_models, a, b, outcome, merged)

    @property
    def present(self) -> np.ndarray:
        return np.unique(np.concatenate([self.a, self.b]))

    def point_counts(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.n_models
        wins = np.zeros((m, m))
        ties = np.zeros((m, m))
        for winner_is_a, sel in ((True, self.outcome == 0), (False, self.outcome == 1)):
            w, lost = (self.a, self.b) if winner_is_a else (self.b, self.a)
            np.add.at(wins, (w[sel], lost[sel]), self.count[sel])
        tie = self.outcome == 2
        np.add.at(ties, (self.a[tie], self.b[tie]), self.count[tie])
        np.add.at(ties, (self.b[tie], self.a[tie]), self.count[tie])
        return wins, ties


Stratum = ItemStratum | BattleStratum


def item_point_counts(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact wins and ties matrices from an (items, models) score matrix with nan for missing."""
    n, m = scores.shape
    answered = ~np.isnan(scores)
    levels = np.unique(scores[answered])
    wins = np.zeros((m, m))
    ties = np.zeros((m, m))
    if levels.size <= _MAX_LEVELS_FOR_MATMUL:
        # wins = sum over score levels l of [s_i == l]^T [s_j < l]: one matrix product per level.
        below = np.zeros((n, m))
        for level in levels:
            at = (scores == level).astype(np.float64)
            wins += at.T @ below
            ties += at.T @ at
            below += at
    else:
        for i in range(m):
            col = scores[:, i : i + 1]
            wins[i] = (col > scores).sum(axis=0)
            ties[i] = (col == scores).sum(axis=0)
    np.fill_diagonal(ties, 0.0)
    return wins, ties


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"{what} must be a pandas DataFrame with columns {list(columns)}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{what} lack column(s) {missing}; expected columns {list(columns)} (plus optional 'task')"
        )


def _factorize_sorted(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes and sorted uniques, so the result never depends on row order."""
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed, unorderable key types: order them by their text
        codes, uniques = pd.factorize(values.astype(str), sort=True)
    if (codes < 0).any():
        raise UserError("per-item scores contain a missing model, task or item_key; fill or drop those rows")
    return codes, np.asarray(uniques)


def _unique_codes(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(codes, return_inverse=True) for non-negative int codes below `space`, by counting."""
    if space > 50_000_000:  # too sparse for a dense table
        uniques, inverse = np.unique(codes, return_inverse=True)
        return uniques, inverse.astype(np.int64)
    seen = np.zeros(space, dtype=bool)
    seen[codes] = True
    uniques = np.flatnonzero(seen)
    position = np.cumsum(seen, dtype=np.int64) - 1
    return uniques, position[codes]


def _task_labels(frame: pd.DataFrame) -> pd.Series:
    if "task" in frame.columns:
        return frame["task"].astype(str)
    return pd.Series("", index=frame.index)


def item_strata(per_item: pd.DataFrame) -> tuple[list[str], list[ItemStratum]]:
    """Sorted model names and one score matrix per task (sorted by task, rows by item key)."""
    _require_columns(per_item, SCORE_COLUMNS, "per-item scores")
    try:
        score = pd.to_numeric(per_item["score"]).to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(f"per-item 'score' must be numeric ({exc}); convert scores to numbers") from exc
    if np.isinf(score).any():
        raise UserError("per-item 'score' contains inf; scores must be finite numbers")
    answered = ~np.isnan(score)  # a nan score means "not scored": the model has no battle on that item
    frame = per_item.loc[answered]
    score = score[answered]
    if frame.empty:
        raise UserError("per-item scores are empty: there is nothing to rate")
    model_codes, models = _factorize_sorted(frame["model"].astype(str))
    task_codes, tasks = _factorize_sorted(_task_labels(frame))
    item_codes, item_uniques = _factorize_sorted(frame["item_key"])
    # One row per (task, item), sorted by task then item key.
    combined = task_codes.astype(np.int64) * len(item_uniques) + item_codes
    row_keys, row_of = _unique_codes(combined, len(tasks) * len(item_uniques))
    m = len(models)
    cells = row_of * m + model_codes
    if np.bincount(cells, minlength=row_keys.size * m).max() > 1:
        dup = frame.loc[pd.Series(cells).duplicated(keep=False).to_numpy()].iloc[0]
        where = f" in task {dup['task']!r}" if "task" in frame.columns else ""
        raise UserError(
            f"per-item scores hold more than one score for model {dup['model']!r} on item "
            f"{dup['item_key']!r}{where}; keep one score per (model, item)"
        )
    scores = np.full((row_keys.size, m), np.nan)
    scores[row_of, model_codes] = score
    row_task = row_keys // len(item_uniques)
    strata = []
    for t, name in enumerate(tasks):
        rows = np.flatnonzero(row_task == t)
        keys = item_uniques[row_keys[rows] % len(item_uniques)]
        strata.append(ItemStratum(str(name), keys, scores[rows]))
    return [str(x) for x in models], strata


def _battle_strata(battles: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[list[str], list[BattleStratum]]:
    _require_columns(battles, BATTLE_COLUMNS, "battles")
    a_names = battles["model_a"].astype(str)
    b_names = battles["model_b"].astype(str)
    winner = battles["winner"].astype(str).str.lower()
    bad = ~winner.isin(WINNERS)
    if bad.any():
        raise UserError(
            f"battle winner {battles['winner'][bad].iloc[0]!r} is not one of {list(WINNERS)}; fix the 'winner' column"
        )
    if (a_names == b_names).any():
        raise UserError(f"a battle pits model {a_names[a_names == b_names].iloc[0]!r} against itself; drop such rows")
    names = sorted(set(a_names) | set(b_names)) if models is None else [str(x) for x in models]
    index = {name: k for k, name in enumerate(names)}
    unknown = sorted((set(a_names) | set(b_names)) - set(index))
    if unknown:
        raise UserError(f"battles name models not in the given model list: {unknown[:5]}")
    outcome = winner.map({w: k for k, w in enumerate(WINNERS)}).to_numpy(dtype=np.int64)
    coded = pd.DataFrame(
        {
            "task": _task_labels(battles).to_numpy(),
            "a": a_names.map(index).to_numpy(dtype=np.int64),
            "b": b_names.map(index).to_numpy(dtype=np.int64),
            "outcome": outcome,
        }
    )
    patterns = coded.groupby(["task", "a", "b", "outcome"], sort=True).size().reset_index(name="count")
    strata = []
    for task, group in patterns.groupby("task", sort=True):
        strata.append(
            BattleStratum.canonical(
                str(task),
                len(names),
                group["a"].to_numpy(),
                group["b"].to_numpy(),
                group["outcome"].to_numpy(),
                group["count"].to_numpy(dtype=np.float64),
            )
        )
    return names, strata


def _counts_strata(counts: PairwiseCounts) -> tuple[list[str], list[BattleStratum]]:
    wins = np.asarray(counts.wins, dtype=np.float64)
    ties = np.asarray(counts.ties, dtype=np.float64)
    m = len(counts.models)
    if wins.shape != (m, m) or ties.shape != (m, m):
        raise ValueError(f"counts for {m} models need {m}x{m} wins and ties matrices")
    if np.any(wins < 0) or np.any(ties < 0) or np.any(wins % 1) or np.any(ties % 1) or np.any(ties != ties.T):
        raise ValueError("bootstrapping counts needs whole, non-negative battle counts and symmetric ties")
    np.fill_diagonal(wins, 0.0)
    a_win, b_win = np.nonzero(wins)
    t_a, t_b = np.nonzero(np.triu(ties, 1))
    return list(counts.models), [
        BattleStratum.canonical(
            "",
            m,
            np.concatenate([a_win, t_a]),
            np.concatenate([b_win, t_b]),
            np.concatenate([np.zeros(a_win.size, np.int64), np.full(t_a.size, 2)]),
            np.concatenate([wins[a_win, b_win], ties[t_a, t_b]]),
        )
    ]


def read_strata(data: pd.DataFrame | PairwiseCounts) -> tuple[list[str], Sequence[Stratum]]:
    """Any accepted input as (models, strata): PairwiseCounts, a battles frame, else per-item scores."""
    if isinstance(data, PairwiseCounts):
        return _counts_strata(data)
    if isinstance(data, pd.DataFrame) and set(BATTLE_COLUMNS) <= set(data.columns):
        return _battle_strata(data)
    return item_strata(data)


# ----------------------------------------------------------------------------------------------
# Public count helpers
# ----------------------------------------------------------------------------------------------


def _pooled(models: list[str], strata: Sequence[Stratum]) -> PairwiseCounts:
    """The exact counts of every task's battles added up."""
    wins = np.zeros((len(models), len(models)))
    ties = np.zeros_like(wins)
    for stratum in strata:
        w, t = stratum.point_counts()
        wins += w
        ties += t
    return PairwiseCounts(models, wins, ties)


def pairwise_counts(per_item: pd.DataFrame) -> PairwiseCounts:
    """Win and tie counts for every pair of models over the items both answered.

    wins[i, j] = items where model i scored higher than model j; ties[i, j] = items where both scored
    the same. With a `task` column, items of all tasks are pooled. Models are sorted by name.
    """
    return _pooled(*item_strata(per_item))


def counts_from_battles(battles: pd.DataFrame, models: Sequence[str] | None = None) -> PairwiseCounts:
    """Aggregate a battles DataFrame (model_a, model_b, winner) into PairwiseCounts (all tasks pooled)."""
    return _pooled(*_battle_strata(battles, models))


def battles_from_scores(per_item: pd.DataFrame) -> pd.DataFrame:
    """One battle per item and pair of models that both answered it.

    Columns: [task,] item_key, model_a, model_b, winner — model_a sorts before model_b; the higher score
    wins, equal scores give "tie". This materialises m*(m-1)/2 rows per item: fine for inspection and
    small runs; for leaderboards use pairwise_counts / bootstrap_ratings, which never build it.
    """
    models, strata = item_strata(per_item)
    names = np.asarray(models, dtype=object)
    outcome_names = np.asarray(WINNERS, dtype=object)
    frames = []
    for stratum in strata:
        present = stratum.present
        i0, i1 = np.triu_indices(present.size, k=1)
        a = stratum.scores[:, present[i0]]
        b = stratum.scores[:, present[i1]]
        item, pair = np.nonzero(~np.isnan(a) & ~np.isnan(b))
        sa, sb = a[item, pair], b[item, pair]
        outcome = np.where(sa > sb, 0, np.where(sa < sb, 1, 2))
        part = {
            "item_key": stratum.item_keys[item],
            "model_a": names[present[i0[pair]]],
            "model_b": names[present[i1[pair]]],
            "winner": outcome_names[outcome],
        }
        if "task" in per_item.columns:
            part = {"task": np.full(item.size, stratum.task, dtype=object), **part}
        frames.append(pd.DataFrame(part))
    return pd.concat(frames, ignore_index=True)
