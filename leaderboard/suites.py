"""Suite averages on the board: each model's (and prompt variant's) current results scored by every
suite (`evalboard.suites`: raw and, where the suite rescales, normalised). A suite's average is
shown only when all its members are there with the shot count and formulation the suite defines
its figure with; otherwise the board says what is missing or measured differently."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from evalboard.leaderboard.runs import CURRENT
from evalboard.records.run_record import RunRecord
from evalboard.suites import Suite, SuiteScore, TaskFigure, builtin_suites, score_suite


@dataclass(frozen=True)
class SuiteRow:
    model: str
    variant: str
    suite: Suite
    score: SuiteScore


def _figures(cells: pd.DataFrame, runs_by_id: dict[str, RunRecord]) -> dict[tuple[str, str], dict[str, list[TaskFigure]]]:
    """(model, variant) -> task -> one figure per current cell (all of the task's metrics)."""
    figures: dict[tuple[str, str], dict[str, list[TaskFigure]]] = defaultdict(lambda: defaultdict(list))
    current = cells[cells["status"] == CURRENT] if not cells.empty else cells
    for row in current.itertuples(index=False):
        record = runs_by_id.get(str(row.run_id))
        entry = record.tasks.get(str(row.task)) if record is not None else None
        if entry is None:
            continue
        metrics = {name: result.value for name, result in entry.metrics.items()}
        figures[(str(row.model), str(row.variant))][str(row.task)].append(
            TaskFigure(metrics, entry.num_fewshot, entry.formulation, entry.n_items))
    return figures


def suite_rows(cells: pd.DataFrame, runs_by_id: dict[str, RunRecord],
               suites: Sequence[Suite] | None = None) -> list[SuiteRow]:
    """Every (model, variant) that has a result for at least one member of a suite, per suite."""
    chosen = list(builtin_suites().values()) if suites is None else list(suites)
    rows = []
    for (model, variant), by_task in sorted(_figures(cells, runs_by_id).items()):
        for suite in chosen:
            if any(task in by_task for task in suite.tasks):
                rows.append(SuiteRow(model, variant, suite, score_suite(suite, by_task)))
    return rows
