"""The table printed at the end of a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evalboard.cli.progress import clear_progress
from evalboard.records.run_record import RunRecord


def _subtask_rows(record: RunRecord, task: str) -> Iterator[dict[str, Any]]:
    """A group task's per-subtask rows (MMLU's subjects), named `  <subtask>` under the task."""
    entry = record.tasks[task]
    for name, metrics in (entry.subtasks or {}).items():
        for metric, value in metrics.items():
            yield {"task": f"  {name}", "formulation": entry.formulation, "num_fewshot": entry.num_fewshot,
                   "metric": metric, "value": value.value, "stderr": value.stderr, "n": value.n}


def _table_rows(record: RunRecord, show_subtasks: bool) -> list[dict[str, Any]]:
    task_rows = list(record.rows())
    rows: list[dict[str, Any]] = []
    for task in dict.fromkeys(row["task"] for row in task_rows):
        rows += [row for row in task_rows if row["task"] == task]
        if show_subtasks:
            rows += _subtask_rows(record, task)
    return rows


def format_summary(record: RunRecord, show_subtasks: bool = False) -> str:
    """One line per task and metric; with `show_subtasks`, a group task's subtasks under it."""
    rows = _table_rows(record, show_subtasks)
    width = max([16] + [len(row["task"]) for row in rows])
    lines = [f"{'task':<{width}} {'formulation':<13} {'shots':>5} {'metric':<26} {'value':>8} {'± stderr':>9} "
             f"{'n':>6}"]
    for row in rows:
        stderr = f"{row['stderr']:.4f}" if row["stderr"] is not None else "-"
        lines.append(
            f"{row['task']:<{width}} {row['formulation']:<13} {row['num_fewshot']:>5} {row['metric']:<26} "
            f"{row['value']:>8.4f} {stderr:>9} {row['n']:>6}"
        )
    usage = record.usage
    lines.append(
        f"model {record.model.label} | {usage.unique_requests} requests "
        f"({usage.cache_hits} from cache) | wall {record.wall_time_s or 0.0:.1f}s"
        + (f" | cost ${usage.cost_usd:.4f}" if usage.cost_usd else "")
        + (f" | {usage.failed_requests} failed" if usage.failed_requests else "")
    )
    if record.path is not None:
        lines.append(f"saved to {record.path}")
    return "\n".join(lines)


def print_summary(record: RunRecord, show_subtasks: bool = False) -> None:
    clear_progress()
    print(format_summary(record, show_subtasks))
