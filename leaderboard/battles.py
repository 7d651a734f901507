"""Per-sample logs -> the per-item score frame that the Bradley–Terry ratings are fitted on.

An item is (task fingerprint, doc_id) within a board column; its score is the primary metric's
per-sample value (a list, e.g. IFEval's per-instruction results, counts as its mean; for a
lower-is-better metric the value is negated so that "higher wins" holds everywhere). Only cells
that the board shows as comparable are rated: `current` ones under the column's reference task
fingerprint, so within a column every rated item shares one fingerprint and doc_id identifies it.
Items that only one model answered are dropped (they are no battle).

Reading is the slow part of a large board (millions of sample lines), so each samples file is
parsed by pyarrow's multi-threaded JSON reader with an explicit schema that keeps only `doc_id`
and the one score, falling back to the records' `SampleScores` model (the same two fields of a
sample line) for anything that schema cannot hold.
Run folders never change once written, so the (doc_id, score) arrays of each file are also kept
in a cache under the evalboard home (keyed by the file's path, size and modification time and the
metric): a nightly rebuild parses only the runs that are new since the last build.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evalboard.fingerprint import stable_hash
from evalboard.leaderboard.runs import CURRENT
from evalboard.paths import home_dir
from evalboard.records.run_record import SampleScores

SCORE_FRAME_COLUMNS = ["model", "task", "item_key", "score"]
_CACHE_VERSION = 1  # bump when the parsing rules change


def _arrow_scores(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(doc_ids as str, scores) through pyarrow, or None when the fast schema does not fit."""
    import pyarrow as pa
    import pyarrow.json as pj

    score_type = pa.struct([(metric, pa.float64())])
    for id_type in (pa.string(), pa.int64()):
        schema = pa.schema([("doc_id", id_type), ("scores", score_type)])  # SampleScores' two fields
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        try:
            table = pj.read_json(path, parse_options=options, read_options=pj.ReadOptions(block_size=1 << 24))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if table.column("doc_id").null_count:
            return None  # an item without an id cannot be matched across models
        ids = table.column("doc_id").to_numpy(zero_copy_only=False).astype(str)
        # flatten() (unlike field()) honours a null `scores` object as a null score
        scores = table.column("scores").combine_chunks().flatten()[0].to_numpy(zero_copy_only=False)
        return ids, np.asarray(scores, dtype=np.float64)
    return None


def _as_score(value: object) -> float:
    if isinstance(value, (list, tuple)):
        numbers = [float(v) for v in value if v is not None]
        return float(np.mean(numbers)) if numbers else np.nan
    if value is None:
        return np.nan
    try:
        return float(value)  # type: ignore[arg-type]  # bools count as 0/1; anything else is caught below
    except (TypeError, ValueError):
        return np.nan


def _python_scores(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    ids, scores = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            sample = SampleScores.model_validate_json(line)
            ids.append(str(sample.doc_id))
            scores.append(_as_score((sample.scores or {}).get(metric)))
    return np.asarray(ids, dtype=str), np.asarray(scores, dtype=np.float64)


def per_sample_metric(metric: str, available: set[str] | None = None) -> str:
    """The per-sample score behind a task metric: `<m>_macro` (a mean of group means) has none of
    its own, its items are scored by `<m>`."""
    if metric.endswith("_macro") and (available is None or metric not in available):
        return metric[: -len("_macro")]
    return metric


def _parse_item_scores(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    fast = _arrow_scores(path, metric)
    return fast if fast is not None else _python_scores(path, metric)


def cache_dir() -> Path:
    return home_dir() / "leaderboard-scores"


def read_item_scores(path: str | Path, metric: str, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(doc_id strings, per-sample scores; nan where the item failed or has no score)."""
    path = Path(path)
    metric = per_sample_metric(metric)
    if not cache:
        return _parse_item_scores(path, metric)
    stat = path.stat()
    key = stable_hash([_CACHE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, metric])
    cached = cache_dir() / f"{key}.npz"
    try:
        with np.load(cached, allow_pickle=False) as data:
            return data["ids"], data["scores"]
    except (OSError, ValueError, KeyError):
        pass
    ids, scores = _parse_item_scores(path, metric)
    try:  # best effort: a read-only home only costs speed
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.npz")
        np.savez(tmp, ids=ids, scores=scores)
        os.replace(tmp, cached)
    except OSError:
        pass
    return ids, scores


def rated_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells whose items feed the ratings: current, under the column's reference fingerprint,
    with a per-sample log on disk."""
    keep = (cells["status"] == CURRENT) & cells["samples_path"].notna()
    return cells[keep]


def item_score_frame(cells: pd.DataFrame, threads: int = 4, cache: bool = True,
                     unreadable: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """DataFrame[model, task, item_key, score] for ratings.leaderboard_ratings.

    `task` is the board column's id; `item_key` numbers the column's doc_ids in sorted order (all
    rated cells of a column share one task fingerprint, so the doc_id alone names the item; integer
    keys keep millions of rows cheap). Built from sorted inputs only: independent of read order."""
    chosen = rated_cells(cells)
    jobs = sorted(
        chosen[["model", "column", "metric", "higher_is_better", "samples_path", "n_items"]].itertuples(index=False),
        key=lambda job: (job.column.id, job.model),
    )
    if not jobs:
        return pd.DataFrame(columns=SCORE_FRAME_COLUMNS)

    def load(job: Any) -> tuple[np.ndarray, np.ndarray] | str:
        try:
            ids, scores = read_item_scores(job.samples_path, job.metric, cache=cache)
        except UnicodeDecodeError:
            return "is not UTF-8 text"
        except (OSError, ValueError) as exc:  # a missing or damaged log: that cell has no battles
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"could not be read ({first})"
        if ids.size != job.n_items:  # cut at a line boundary: every line parses, some are missing
            return f"holds {ids.size} of the run's {job.n_items} items (truncated?)"
        return ids, scores

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        loaded = list(pool.map(load, jobs))
    models = sorted({job.model for job in jobs})
    model_code = {name: k for k, name in enumerate(models)}
    by_task: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for job, result in zip(jobs, loaded):
        if isinstance(result, str):
            if unreadable is not None:  # `unreadable` (when given) is told which logs and why
                unreadable.append((str(job.samples_path), f"{result}; its items are left out of the ratings"))
            continue
        ids, scores = result
        keep = ~np.isnan(scores)
        ids, scores = ids[keep], scores[keep]
        _, first = np.unique(ids, return_index=True)
        if first.size < ids.size:  # a doc_id logged twice would make the item ambiguous: keep the first
            first.sort()
            ids, scores = ids[first], scores[first]
        sign = 1.0 if job.higher_is_better else -1.0
        by_task.setdefault(job.column.id, []).append((model_code[job.model], ids, sign * scores))
    tasks = sorted(by_task)
    parts = []
    for t, task in enumerate(tasks):
        entries = by_task[task]
        _, keys = np.unique(np.concatenate([e[1] for e in entries]), return_inverse=True)
        keys = keys.reshape(-1)
        codes = np.repeat([e[0] for e in entries], [e[1].size for e in entries])
        scores = np.concatenate([e[2] for e in entries])
        answered_by = np.bincount(keys)[keys]
        shared = answered_by >= 2  # an item only one model answered is no battle
        parts.append((np.full(int(shared.sum()), t), codes[shared], keys[shared], scores[shared]))
    if not parts:
        return pd.DataFrame(columns=SCORE_FRAME_COLUMNS)
    return pd.DataFrame({
        "model": pd.Categorical.from_codes(np.concatenate([p[1] for p in parts]), categories=models),
        "task": pd.Categorical.from_codes(np.concatenate([p[0] for p in parts]), categories=tasks),
        "item_key": np.concatenate([p[2] for p in parts]).astype(np.int64),
        "score": np.concatenate([p[3] for p in parts]),
    })


def _components(frame: pd.DataFrame) -> dict[str, int]:
    """Models linked by any shared item (within one task) fall in one component, numbered 1, 2...
    biggest first: ratings of different components were never compared and are not comparable."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    models = frame["model"].cat.remove_unused_categories()
    tasks = frame["task"].cat.codes.to_numpy().astype(np.int64)
    keys = frame["item_key"].to_numpy().astype(np.int64)
    width = int(keys.max()) + 1 if keys.size else 1
    m = len(models.cat.categories)
    # A bipartite graph: model nodes 0..m-1, item nodes m + (task, item); an edge per answer.
    items = m + tasks * width + keys
    size = m + (int(tasks.max()) + 1) * width if tasks.size else m
    graph = sparse.coo_matrix((np.ones(items.size, dtype=np.int8), (models.cat.codes.to_numpy(), items)),
                              shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[str]] = {}
    for name, label in zip(models.cat.categories, labels[:m]):
        members.setdefault(int(label), []).append(str(name))
    ordered = sorted((sorted(group) for group in members.values()), key=lambda group: (-len(group), group[0]))
    return {model: k + 1 for k, group in enumerate(ordered) for model in group}


def board_ratings(frame: pd.DataFrame, rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per-column and overall Bradley–Terry ratings (Elo scale, bootstrap CIs, ranks by CI overlap):
    DataFrame[task, model, rating, ci_low, ci_high, rank, items, group]. `items` = how many items the
    model has battles on; `group` numbers the components of models that met (1 when all did)."""
    from evalboard.leaderboard.ratings import OVERALL, RatingOptions, leaderboard_ratings

    columns = ["task", "model", "rating", "ci_low", "ci_high", "rank", "items", "group"]
    if frame.empty or frame["model"].nunique() < 2:
        return pd.DataFrame(columns=columns)
    table = leaderboard_ratings(frame, RatingOptions(rounds=rounds, seed=seed))
    items = frame.groupby(["task", "model"], observed=True).size()
    totals = frame.groupby("model", observed=True).size()
    table["items"] = [
        int(totals.get(m, 0)) if t == OVERALL else int(items.get((t, m), 0))
        for t, m in zip(table["task"], table["model"])
    ]
    groups = {OVERALL: _components(frame)}
    for task, part in frame.groupby("task", observed=True):
        groups[str(task)] = _components(part)
    table["group"] = [groups[t].get(m, 1) for t, m in zip(table["task"], table["model"])]
    return table[columns]
