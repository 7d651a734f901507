"""The page: the board's tables, ratings and charts rendered into one self-contained HTML file.

Everything that comes from results (model names, prompts, answers...) goes through jinja2's
autoescape; the JSON embedded for the page's script is escaped so no string can close the script
element. Output depends only on the input: sorted iteration, fixed number formatting, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from evalboard.leaderboard import charts
from evalboard.leaderboard.charts import fmt, is_fraction_scale, value_text
from evalboard.leaderboard.runs import (
    CURRENT,
    DIFFERS,
    STALE,
    SUPERSEDED,
    Column,
    ModelInfo,
    start_order,
)
from evalboard.leaderboard.table import Cell, average, averaged_columns, board_columns, cell_grid, higher_is_better
from evalboard.records.run_record import MetricResult, RunRecord, SampleLine, TaskResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
PROMPT_CHARS = 1500
ANSWER_CHARS = 800


@dataclass
class Board:
    """Everything the page shows, computed from the store (see build.build_board)."""

    title: str
    cells: pd.DataFrame
    models: dict[str, ModelInfo]
    ratings: pd.DataFrame
    rounds: int
    seed: int
    failures: list[dict[str, Any]]
    export_data: dict[str, Any]
    samples_per_cell: int = 2
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why) left off the board
    arenas: list[dict[str, Any]] = field(default_factory=list)  # arena_page.arena_views


# ---------------------------------------------------------------------------------------------
# Small formatting helpers (fixed formats: byte-stable output)
# ---------------------------------------------------------------------------------------------


def slug(text: str, taken: set[str]) -> str:
    """An HTML id for a name: readable, unique on the page."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "item"
    candidate, k = base, 2
    while candidate in taken:
        candidate, k = f"{base}-{k}", k + 1
    taken.add(candidate)
    return candidate


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _sort_value(value: float | None) -> str:
    """The data-v attribute the table sorts by (empty = missing, sorts last)."""
    return "" if value is None or not math.isfinite(value) else repr(round(float(value), 9))


def _parameters(count: int | None) -> str:
    if not count:
        return "—"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def _money(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "$0"
    return f"${value:.2f}" if value >= 0.995 else f"${value:.3g}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} more characters]"


def _whisker(cell: Cell, lo: float, hi: float) -> dict[str, str] | None:
    if not math.isfinite(cell.value):
        return None
    span = hi - lo

    def pct(x: float) -> float:
        return min(max((x - lo) / span * 100.0, 0.0), 100.0)

    has_ci = math.isfinite(cell.ci_low) and math.isfinite(cell.ci_high)
    left = pct(cell.ci_low) if has_ci else pct(cell.value)
    right = pct(cell.ci_high) if has_ci else pct(cell.value)
    return {"left": fmt(left), "width": fmt(right - left), "point": fmt(pct(cell.value))}


# ---------------------------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------------------------


def _column_views(columns: list[Column], grid: dict[tuple[str, Column], Cell], higher: dict[Column, bool],
                  taken: set[str]) -> list[dict[str, Any]]:
    views = []
    for column in columns:
        shown = [cell for (model, col), cell in grid.items() if col == column]
        values = [v for c in shown for v in (c.value, c.ci_low, c.ci_high)]
        percent = is_fraction_scale([c.value for c in shown])
        lo, hi = charts.axis_range(values, percent)
        views.append({
            "column": column, "id": column.id, "anchor": slug("col-" + column.id, taken), "task": column.task,
            "detail": column.detail, "percent": percent, "higher_is_better": higher.get(column, True),
            "lo": lo, "hi": hi,
        })
    return views


def _cell_view(cell: Cell | None, view: dict[str, Any]) -> dict[str, Any]:
    if cell is None:
        return {"text": "—", "sort": "", "status": "missing", "title": "no result", "whisker": None}
    percent = view["percent"]
    if math.isfinite(cell.ci_low):
        ci = f"95% CI {value_text(cell.ci_low, percent)}–{value_text(cell.ci_high, percent)}"
    else:
        ci = "no CI (fewer than 2 items)"
    title = f"{view['task']} ({view['detail']}): {value_text(cell.value, percent)}, {ci}, n={cell.n}, run {cell.run_id}"
    if cell.reason:
        title += f" — {cell.status}: {cell.reason}"
    return {
        "text": value_text(cell.value, percent),
        "sort": _sort_value(cell.value) if cell.status == CURRENT else "",
        "status": cell.status,
        "title": title,
        "whisker": _whisker(cell, view["lo"], view["hi"]),
    }


def _ratings_views(board: Board, model_anchor: dict[str, str], column_views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from evalboard.leaderboard.ratings import OVERALL

    ratings = board.ratings
    blocks = []
    names = [(OVERALL, "Overall (all columns pooled)")]
    names += [(v["id"], f"{v['task']} — {v['detail']}") for v in column_views]
    for key, title in names:
        part = ratings[ratings["task"] == key]
        if part.empty:
            continue
        lo = float(part["ci_low"].min()) if part["ci_low"].notna().any() else float(part["rating"].min())
        hi = float(part["ci_high"].max()) if part["ci_high"].notna().any() else float(part["rating"].max())
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        rows = []
        for row in part.sort_values(["rank", "rating", "model"], ascending=[True, False, True]).itertuples(index=False):
            cell = Cell(row.rating, math.nan, row.ci_low, row.ci_high, 0, CURRENT, "", "", "")
            rows.append({
                "model": row.model, "anchor": model_anchor.get(row.model, ""),
                "access": board.models[row.model].access if row.model in board.models else "unknown",
                "rank": int(row.rank), "rating": f"{row.rating:.0f}", "rating_sort": _sort_value(row.rating),
                "ci": f"{row.ci_low:.0f} – {row.ci_high:.0f}" if math.isfinite(row.ci_low) else "—",
                "n_items": f"{int(row.items):,}", "items_sort": str(int(row.items)), "group": int(row.group),
                "whisker": _whisker(cell, lo, hi),
            })
        groups = sorted({r["group"] for r in rows})
        blocks.append({"key": key, "title": title, "rows": rows, "split": len(groups) > 1,
                       "anchor": "ratings-" + ("overall" if key == OVERALL else
                                               next(v["anchor"] for v in column_views if v["id"] == key))})
    return blocks


def _first_samples(record: RunRecord, task: str, count: int) -> list[SampleLine]:
    """The drill-down's first `count` sample lines, without reading the rest; a missing or damaged
    log shows what could be read before the damage."""
    out: list[SampleLine] = []
    try:
        for sample in record.iter_samples(task):
            out.append(sample)
            if len(out) >= count:
                break
    except (OSError, ValueError, KeyError):
        pass
    return out


def _sample_view(sample: SampleLine, metric: str) -> dict[str, Any]:
    requests, responses, target = sample.requests, sample.responses, sample.target
    if isinstance(target, int) and 0 <= target < len(requests) and requests[target].continuation is not None:
        target_text = f"{target}: {requests[target].continuation}"
    else:
        target_text = json.dumps(target, ensure_ascii=False) if not isinstance(target, str) else target
    texts = [r.text for r in responses if r.text is not None]
    logprobs = [r.logprob for r in responses if r.logprob is not None]
    if texts:
        answer = str(texts[0])
    elif logprobs and len(logprobs) == len(responses) == len(requests):
        best = max(range(len(logprobs)), key=lambda k: (logprobs[k], -k))
        answer = f"{best}: {requests[best].continuation or ''} (highest loglikelihood)"
    else:
        answer = ""
    score = sample.scores.get(metric)
    if score is None:
        score = sample.scores.get(metric.removesuffix("_macro"))
    return {
        "doc_id": str(sample.doc_id),
        "prompt": _truncate(sample.prompt or "", PROMPT_CHARS),
        "target": _truncate(str(target_text), ANSWER_CHARS),
        "answer": _truncate(answer, ANSWER_CHARS),
        "score": json.dumps(score) if score is not None else "—",
        "error": sample.error,
    }


def _metric_list(metrics: Mapping[str, MetricResult]) -> list[dict[str, str]]:
    out = []
    for name, value in sorted(metrics.items()):
        out.append({
            "name": name,
            "value": f"{value.value:.4f}",
            "stderr": f"{value.stderr:.4f}" if value.stderr is not None else "—",
            "n": str(value.n),
        })
    return out


def _subtask_table(entry: TaskResult) -> dict[str, Any] | None:
    """A group task's drill-down (MMLU by subject): one row per subtask, one column per metric,
    as lm-eval's results list each subtask. None for a task without subtasks."""
    if not entry.subtasks:
        return None
    names = sorted({metric for metrics in entry.subtasks.values() for metric in metrics})
    rows = []
    for subtask, metrics in sorted(entry.subtasks.items()):
        cells = {m["name"]: f"{m['value']} ± {m['stderr']}" for m in _metric_list(metrics)}
        rows.append({"name": subtask, "cells": [cells.get(name, "—") for name in names],
                     "n": str(max(value.n for value in metrics.values()))})
    return {"metrics": names, "rows": rows}


def _model_views(board: Board, model_anchor: dict[str, str], runs_by_id: dict[str, RunRecord]) -> list[dict[str, Any]]:
    cells = board.cells
    status_order = {CURRENT: 0, DIFFERS: 1, STALE: 2, SUPERSEDED: 3}
    views = []
    for label in sorted(board.models):
        info = board.models[label]
        own = cells[cells["model"] == label]
        entries = []
        for row in sorted(own.itertuples(index=False),
                          key=lambda r: (r.column, status_order[r.status], r.created_at, r.run_id)):
            record = runs_by_id[row.run_id]
            entry = record.tasks[row.task]
            samples = []
            if row.status in (CURRENT, DIFFERS) and row.samples_path:
                samples = [_sample_view(s, row.metric)
                           for s in _first_samples(record, row.task, board.samples_per_cell)]
            entries.append({
                "task": row.task, "detail": row.column.detail, "status": row.status, "reason": row.reason,
                "run_id": row.run_id, "created_at": row.created_at, "n_items": row.n_items,
                "failed_items": row.failed_items, "metrics": _metric_list(entry.metrics), "primary": row.metric,
                "task_fp": row.task_fp[:12], "data_origin": entry.data_origin or "—",
                "samples": samples, "subtasks": _subtask_table(entry),
            })
        runs = []
        for run_id in sorted(info.run_ids, key=lambda i: start_order(runs_by_id[i]), reverse=True):  # newest first
            run = runs_by_id[run_id]
            runs.append({
                "run_id": run_id, "created_at": run.created_at,
                "harness": f"{run.harness.name} {run.harness.version}".strip(),
                "git_commit": (run.harness.git_commit or "—")[:12],
                "spec": run.model.spec, "fingerprint": run.model.fingerprint[:12],
                "tasks": ", ".join(sorted(run.tasks)),
                "wall_time": _num(run.wall_time_s, 1),
                "imported": run.imported.from_ if run.imported is not None else None,
            })
        facts = [("Spec", info.spec), ("Access", info.access), ("Parameters", _parameters(info.parameters)),
                 ("Model fingerprint", info.fingerprint[:16])]
        facts += [(key.replace("_", " ").capitalize(), json.dumps(value, ensure_ascii=False, sort_keys=True)
                   if not isinstance(value, str) else value)
                  for key, value in sorted(info.info.items()) if key not in ("open_weights", "parameters")]
        views.append({"label": label, "anchor": model_anchor[label], "access": info.access, "facts": facts,
                      "entries": entries, "runs": runs})
    return views


def _suite_views(board: Board, runs_by_id: dict[str, RunRecord]) -> list[dict[str, Any]]:
    from evalboard.leaderboard.suites import suite_rows

    views = []
    for row in suite_rows(board.cells, runs_by_id):
        score, normalises = row.score, row.suite.normalise != "none"
        views.append({
            "suite": row.suite.name, "description": row.suite.description, "model": row.model,
            "variant": row.variant or "plain",
            "raw": value_text(score.raw, True) if score.raw is not None else "—",
            "normalised": (value_text(score.normalised, True) if score.normalised is not None else "—")
            if normalises else "n/a",
            "benchmarks": [{"name": b.name, "raw": value_text(b.raw, True) if b.raw is not None else "—",
                            "normalised": value_text(b.normalised, True) if b.normalised is not None and normalises
                            else ("n/a" if not normalises else "—")} for b in score.benchmarks],
            "problems": score.problems(),
        })
    return views


def page_context(board: Board, runs_by_id: dict[str, RunRecord]) -> dict[str, Any]:
    from evalboard.leaderboard.ratings import OVERALL

    cells = board.cells
    grid = cell_grid(cells)
    columns = board_columns(cells)
    higher = higher_is_better(cells)
    taken: set[str] = set()
    model_anchor = {label: slug("model-" + label, taken) for label in sorted(board.models)}
    column_views = _column_views(columns, grid, higher, taken)
    overall = board.ratings[board.ratings["task"] == OVERALL].set_index("model") if not board.ratings.empty else None
    all_percent = all(v["percent"] for v in column_views) if column_views else True
    counted = averaged_columns(cells, columns, higher)
    averaged_total = len(counted)

    rows: list[dict[str, Any]] = []
    for label in sorted(board.models):
        info = board.models[label]
        mean, covered = average(grid, label, counted, higher)
        rating = overall.loc[label] if overall is not None and label in overall.index else None
        rows.append({
            "model": label, "anchor": model_anchor[label], "access": info.access,
            "imported": info.imported,
            "params": _parameters(info.parameters), "params_sort": _sort_value(info.parameters),
            "cost": _money(info.cost_per_1k_items_usd), "cost_sort": _sort_value(info.cost_per_1k_items_usd),
            "latency": _num(info.latency_mean_s, 2), "latency_sort": _sort_value(info.latency_mean_s),
            "throughput": _num(info.output_tokens_per_s, 1), "throughput_sort": _sort_value(info.output_tokens_per_s),
            "average": value_text(mean, all_percent), "average_sort": _sort_value(mean),
            "partial": covered < averaged_total, "coverage": f"{covered}/{averaged_total}",
            "rating": f"{rating['rating']:.0f}" if rating is not None else "—",
            "rating_sort": _sort_value(float(rating["rating"])) if rating is not None else "",
            "rating_rank": int(rating["rank"]) if rating is not None else None,
            "rating_ci": (f"95% CI {rating['ci_low']:.0f}–{rating['ci_high']:.0f}"
                          if rating is not None and math.isfinite(rating["ci_low"]) else ""),
            "cells": [_cell_view(grid.get((label, v["column"])), v) for v in column_views],
            "_mean": mean, "_rating": float(rating["rating"]) if rating is not None else -math.inf,
        })
    # Default order: overall rating, then average, then name.
    def order(row: dict[str, Any]) -> tuple[float, float, str]:
        mean = float(row["_mean"])
        return (-float(row["_rating"]), -(mean if math.isfinite(mean) else -math.inf), str(row["model"]))

    rows.sort(key=order)
    for k, row in enumerate(rows, start=1):
        row["position"] = k

    cost_rows = []
    for row in rows:
        name = str(row["model"])
        info = board.models[name]
        cost_rows.append((name, info.access,
                          info.cost_per_1k_items_usd if info.cost_per_1k_items_usd is not None else math.nan,
                          float(row["_mean"]), not row["partial"]))
    # With no priced model (all self-hosted, on the $0 line) there is no cost to compare: a note,
    # not a large chart of one vertical line.
    priced = any(math.isfinite(r[2]) and r[2] > 0 for r in cost_rows)
    cost_chart = charts.cost_chart(cost_rows, all_percent) if priced else None
    unplotted = sorted(r[0] for r in cost_rows if not (math.isfinite(r[2]) and math.isfinite(r[3])))

    bar_charts = []
    for view in column_views:
        bars = []
        for label in sorted(board.models):
            cell = grid.get((label, view["column"]))
            if cell is None or cell.status == STALE or not math.isfinite(cell.value):
                continue
            bars.append((label, board.models[label].access, cell.value, cell.ci_low, cell.ci_high,
                         cell.status == DIFFERS))
        bars.sort(key=lambda b: (-b[2] if view["higher_is_better"] else b[2], b[0]))
        bar_charts.append({"view": view, "chart": charts.bar_chart(bars, view["percent"])})

    counts = cells["status"].value_counts().to_dict() if not cells.empty else {}
    stale_cells = [
        {"model": r.model, "task": r.task, "detail": r.column.detail, "run_id": r.run_id, "reason": r.reason,
         "status": r.status, "anchor": model_anchor[r.model], "access": board.models[r.model].access}
        for r in sorted(cells[cells["status"].isin([STALE, DIFFERS])].itertuples(index=False),
                        key=lambda r: (r.model, r.column, r.run_id))
        if grid.get((r.model, r.column)) is not None and grid[(r.model, r.column)].run_id == r.run_id
    ]
    newest = str(cells["created_at"].max()) if not cells.empty else None
    return {
        "title": board.title,
        "columns": column_views,
        "rows": rows,
        "suites": _suite_views(board, runs_by_id),
        "ratings": _ratings_views(board, model_anchor, column_views),
        "arenas": board.arenas,
        "rounds": board.rounds,
        "seed": board.seed,
        "cost_chart": cost_chart,
        "priced": priced,
        "unplotted": unplotted,
        "bar_charts": bar_charts,
        "models": _model_views(board, model_anchor, runs_by_id),
        "failures": board.failures,
        "unreadable": board.unreadable,
        "stale_cells": stale_cells,
        "summary": {
            "models": len(board.models), "columns": len(column_views), "runs": len(runs_by_id),
            "current": int(counts.get(CURRENT, 0)), "stale": int(counts.get(STALE, 0)),
            "differs": int(counts.get(DIFFERS, 0)), "newest": newest[:19].replace("T", " ") if newest else "—",
            "access": sorted({m.access for m in board.models.values()}),
        },
        "all_percent": all_percent,
        "board_json": script_json(board.export_data),
        "css": (TEMPLATES / "style.css").read_text(encoding="utf-8"),
        "js": (TEMPLATES / "app.js").read_text(encoding="utf-8"),
    }


def script_json(data: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no string in it can end the
    element or open a comment, whatever the results contain."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template; results are untrusted text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def render(board: Board, runs_by_id: dict[str, RunRecord]) -> str:
    return environment().get_template("page.html.jinja").render(page_context(board, runs_by_id))
