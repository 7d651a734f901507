"""The score table: models × columns, each cell the column's primary metric with its standard
error, 95% CI and n, plus an average, coverage and the model's facts (open/closed, size, cost,
latency, throughput).

The average of a model is the mean of its comparable cells (status `current`) over columns whose
metric is higher-is-better; `coverage` says how many of the board's columns that is, because an
average over a different set of columns is not comparable (the page marks such averages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from evalboard.leaderboard.runs import CURRENT, DIFFERS, STALE, Column, ModelInfo
from evalboard.stats import normal_ci

SHOWN = (CURRENT, DIFFERS, STALE)  # what a table cell can show (superseded runs only in drill-downs)


@dataclass(frozen=True)
class Cell:
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    status: str
    reason: str
    run_id: str
    created_at: str


def _shown_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """One cell per (model, column): the current/differs one, else the newest stale one."""
    candidates = cells[cells["status"].isin(SHOWN)].copy()
    rank = {CURRENT: 0, DIFFERS: 0, STALE: 1}
    candidates["_pref"] = candidates["status"].map(rank)
    candidates["_order"] = range(len(candidates))
    candidates = candidates.sort_values(["_pref", "_order"], ascending=[True, False], kind="stable")
    return candidates.drop_duplicates(["model", "column"], keep="first").drop(columns=["_pref", "_order"])


def _ci(value: float, stderr: float) -> tuple[float, float]:
    if math.isnan(stderr):
        return math.nan, math.nan
    return normal_ci(value, stderr, 0.95)


def cell_grid(cells: pd.DataFrame) -> dict[tuple[str, Column], Cell]:
    grid = {}
    for row in _shown_cells(cells).itertuples(index=False):
        low, high = _ci(row.value, row.stderr)
        grid[(row.model, row.column)] = Cell(
            value=row.value, stderr=row.stderr, ci_low=low, ci_high=high, n=row.n, status=row.status,
            reason=row.reason, run_id=row.run_id, created_at=row.created_at,
        )
    return grid


def board_columns(cells: pd.DataFrame) -> list[Column]:
    """Columns that have a cell to show, sorted (task, formulation, shots, metric, variant)."""
    return sorted(set(_shown_cells(cells)["column"]))


def higher_is_better(cells: pd.DataFrame) -> dict[Column, bool]:
    latest = cells.drop_duplicates("column", keep="last")
    return dict(zip(latest["column"], latest["higher_is_better"].astype(bool)))


def averaged_columns(cells: pd.DataFrame, columns: list[Column], higher: dict[Column, bool]) -> list[Column]:
    """The columns an average is taken over: higher-is-better ones that evalboard itself measured
    for some model (all of them on a board of imported results only). A column only imported
    results fill (an lm-eval task no evalboard task mirrors) is shown but left out, so importing
    it does not make every other model's average partial (nor empty the Pareto front, which only
    complete averages can join)."""
    native = set(cells.loc[~cells["imported"].astype(bool), "column"]) if "imported" in cells.columns else set()
    if not native:  # a board of imported results only: every column counts
        native = set(columns)
    return [c for c in columns if higher.get(c, True) and c in native]


def average(grid: dict[tuple[str, Column], Cell], model: str, columns: list[Column],
            higher: dict[Column, bool]) -> tuple[float, int]:
    """(mean of the model's current cells over higher-is-better columns, how many cells that is)."""
    values = [grid[(model, c)].value for c in columns
              if higher.get(c, True) and (model, c) in grid and grid[(model, c)].status == CURRENT]
    values = [v for v in values if not math.isnan(v)]
    return (float(np.mean(values)) if values else math.nan), len(values)


def score_table(cells: pd.DataFrame, models: dict[str, ModelInfo]) -> pd.DataFrame:
    """Wide table, one row per model: facts, average, coverage, and per column value / stderr /
    ci_low / ci_high / n / status (column names `<column id> :: value` etc.). Rows by model name."""
    grid = cell_grid(cells)
    columns = board_columns(cells)
    higher = higher_is_better(cells)
    counted = averaged_columns(cells, columns, higher)
    averaged = len(counted)
    rows: list[dict[str, Any]] = []
    for label in sorted(models):
        info = models[label]
        mean, covered = average(grid, label, counted, higher)
        row: dict[str, Any] = {
            "model": label,
            "spec": info.spec,
            "access": info.access,
            "parameters": info.parameters,
            "cost_per_1k_items_usd": info.cost_per_1k_items_usd,
            "latency_mean_s": info.latency_mean_s,
            "output_tokens_per_s": info.output_tokens_per_s,
            "average": mean,
            "columns_averaged": covered,
            "columns_total": averaged,
        }
        for column in columns:
            cell = grid.get((label, column))
            prefix = column.id
            row[f"{prefix} :: value"] = cell.value if cell else math.nan
            row[f"{prefix} :: stderr"] = cell.stderr if cell else math.nan
            row[f"{prefix} :: ci_low"] = cell.ci_low if cell else math.nan
            row[f"{prefix} :: ci_high"] = cell.ci_high if cell else math.nan
            row[f"{prefix} :: n"] = cell.n if cell else None
            row[f"{prefix} :: status"] = cell.status if cell else None
        rows.append(row)
    fixed = ["model", "spec", "access", "parameters", "cost_per_1k_items_usd", "latency_mean_s",
             "output_tokens_per_s", "average", "columns_averaged", "columns_total"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=fixed)
