"""The table printed at the end of a run."""

from __future__ import annotations

from evalboard.cli.progress import clear_progress
from evalboard.records.run_record import RunRecord


def format_summary(record: RunRecord) -> str:
    lines = [f"{'task':<16} {'formulation':<13} {'shots':>5} {'metric':<26} {'value':>8} {'± stderr':>9} {'n':>6}"]
    for row in record.rows():
        stderr = f"{row['stderr']:.4f}" if row["stderr"] is not None else "-"
        lines.append(
            f"{row['task']:<16} {row['formulation']:<13} {row['num_fewshot']:>5} {row['metric']:<26} "
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


def print_summary(record: RunRecord) -> None:
    clear_progress()
    print(format_summary(record))
