"""`results_df(dir)`: a results folder as one pandas DataFrame, one row per (run, task) and one
column per metric, with the leaderboard's status of each row (so "current" means here exactly
what it means on the page: the model's newest measurement in that column, see `runs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from evalboard.leaderboard.runs import CURRENT, DIFFERS, load_cells
from evalboard.records.run_record import RunRecord
from evalboard.records.store import list_runs

_FIRST = ["model", "spec", "task", "formulation", "num_fewshot", "variant", "primary_metric", "n"]
_LAST = ["status", "run_id", "created_at", "model_fingerprint", "task_fingerprint"]


def _metric_rows(record: RunRecord) -> list[dict[str, Any]]:
    rows = []
    for task, entry in record.tasks.items():
        row: dict[str, Any] = {"run_id": record.run_id, "task": task, "primary_metric": entry.primary_metric,
                               "n": entry.n_items, "task_fingerprint": entry.task_fingerprint,
                               "model_fingerprint": record.model.fingerprint}
        row.update({metric: value.value for metric, value in entry.metrics.items()})
        row.update({f"{metric}_stderr": value.stderr for metric, value in entry.metrics.items()})
        rows.append(row)
    return rows


def results_df(directory: Path | str = "results", all_runs: bool = False) -> pd.DataFrame:
    """Every task result under a results folder: one row per (run, task), one column per metric
    (and `<metric>_stderr`), the model's label (`model`) and spec, how the task was measured, and
    the row's leaderboard `status`. By default only current rows (each model's newest result in
    each leaderboard column, including those marked `differs`); `all_runs=True` keeps superseded
    and stale runs too. Newest first."""
    runs = list_runs(Path(directory))
    cells = load_cells(runs)
    if cells.empty:
        return pd.DataFrame(columns=_FIRST + _LAST)
    if not all_runs:
        cells = cells[cells["status"].isin((CURRENT, DIFFERS))]
    facts = cells[["run_id", "task", "model", "spec", "formulation", "num_fewshot", "variant", "status", "created_at"]]
    metrics = pd.DataFrame([row for record in runs for row in _metric_rows(record)])
    frame = facts.merge(metrics, on=["run_id", "task"], how="left")
    metric_columns = [c for c in metrics.columns if c not in _FIRST + _LAST]
    values = [c for c in metric_columns if not c.endswith("_stderr")]
    stderrs = [c for c in metric_columns if c.endswith("_stderr")]
    frame = frame[_FIRST + values + stderrs + _LAST]
    return frame.sort_values(["created_at", "run_id", "task"], ascending=[False, False, True]).reset_index(drop=True)
