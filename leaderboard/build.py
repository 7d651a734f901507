"""`evalboard leaderboard build`: results store -> one static HTML page plus CSV/JSON exports.

    runs ──load_cells──▶ cells (+status) ──▶ score table
    samples ──item_score_frame──▶ per-item scores ──ratings──▶ Bradley–Terry ratings
    both ──page──▶ index.html, scores.csv/json, ratings.csv/json (written atomically, side by side)
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evalboard.atomic import write_text_atomic
from evalboard.errors import UserError
from evalboard.leaderboard.arena_page import arena_views
from evalboard.leaderboard.battles import board_ratings, item_score_frame
from evalboard.leaderboard.page import Board, render
from evalboard.leaderboard.runs import load_cells, model_infos
from evalboard.leaderboard.table import board_columns, cell_grid, score_table
from evalboard.records.store import scan_runs

DEFAULT_TITLE = "evalboard leaderboard"
EXPORT_SCHEMA = "evalboard.leaderboard/1"
STATE_DIR = ".leaderboard"  # inside the results store: the update's lock and last status


def status_path(results: Path) -> Path:
    """Where `leaderboard update` records what failed (the page shows it)."""
    return Path(results) / STATE_DIR / "update-status.json"


def read_failures(results: Path) -> list[dict[str, Any]]:
    path = status_path(results)
    if not path.is_file():
        return []
    try:
        failures = json.loads(path.read_text(encoding="utf-8")).get("failures", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        return []
    return sorted(
        ({"model": str(f.get("model")), "tasks": [str(t) for t in f.get("tasks", [])], "error": str(f.get("error"))}
         for f in failures if isinstance(f, dict)),
        key=lambda f: (f["model"], f["tasks"], f["error"]),
    )


def _clean(value: Any, digits: int = 6) -> Any:
    """Numbers for the exports: rounded (stable text), nan/inf -> null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    number = float(value)
    return round(number, digits) if math.isfinite(number) else None


def export_data(cells: pd.DataFrame, models: dict[str, Any], ratings: pd.DataFrame, rounds: int, seed: int) -> dict[str, Any]:
    """The tables as plain data: what scores.json holds and what the page embeds."""
    from evalboard.leaderboard.ratings import OVERALL

    grid = cell_grid(cells)
    columns = board_columns(cells)
    table = score_table(cells, models).set_index("model")
    overall = ratings[ratings["task"] == OVERALL].set_index("model") if not ratings.empty else pd.DataFrame()
    out_models = []
    for label in sorted(models):
        info = models[label]
        row = table.loc[label]
        rating = overall.loc[label] if label in overall.index else None
        cells_out = {}
        for column in columns:
            cell = grid.get((label, column))
            if cell is not None:
                cells_out[column.id] = {
                    "value": _clean(cell.value), "stderr": _clean(cell.stderr), "ci_low": _clean(cell.ci_low),
                    "ci_high": _clean(cell.ci_high), "n": int(cell.n), "status": cell.status, "run_id": cell.run_id,
                }
        out_models.append({
            "model": label, "spec": info.spec, "access": info.access, "parameters": info.parameters,
            "model_fingerprint": info.fingerprint, "imported": info.imported,
            "average": _clean(row["average"]), "columns_averaged": int(row["columns_averaged"]),
            "rating": _clean(rating["rating"], 3) if rating is not None else None,
            "rating_ci_low": _clean(rating["ci_low"], 3) if rating is not None else None,
            "rating_ci_high": _clean(rating["ci_high"], 3) if rating is not None else None,
            "rating_rank": int(rating["rank"]) if rating is not None else None,
            "cost_per_1k_items_usd": _clean(info.cost_per_1k_items_usd),
            "latency_mean_s": _clean(info.latency_mean_s),
            "output_tokens_per_s": _clean(info.output_tokens_per_s),
            "cells": cells_out,
        })
    higher = dict(zip(cells["column"], cells["higher_is_better"])) if not cells.empty else {}
    return {
        "schema": EXPORT_SCHEMA,
        "columns": [
            {"id": c.id, "task": c.task, "formulation": c.formulation, "num_fewshot": c.num_fewshot,
             "metric": c.metric, "variant": c.variant, "higher_is_better": bool(higher.get(c, True))}
            for c in columns
        ],
        "models": out_models,
        "ratings": {"method": "bradley-terry", "scale": "elo", "bootstrap_rounds": rounds, "seed": seed,
                    "confidence": 0.95},
    }


def ratings_records(ratings: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"task": str(r.task), "model": str(r.model), "rating": _clean(r.rating, 3), "ci_low": _clean(r.ci_low, 3),
         "ci_high": _clean(r.ci_high, 3), "rank": int(r.rank), "items": int(r.items), "group": int(r.group)}
        for r in ratings.itertuples(index=False)
    ]


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n", float_format="%.6g")
    return buffer.getvalue()


@dataclass
class BuildReport:
    page: Path
    exports: list[Path]
    models: int
    columns: int
    runs: int
    rated_items: int
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why): not on the board
    timings: dict[str, float] = field(default_factory=dict)


def build_leaderboard(
    results: str | Path = "results",
    output: str | Path = "results/leaderboard/index.html",
    *,
    rounds: int = 1000,
    seed: int = 0,
    title: str = DEFAULT_TITLE,
    threads: int = 4,
    cache: bool = True,
) -> BuildReport:
    """Build the page (and scores/ratings exports beside it) from a results store."""
    results, output = Path(results), Path(output)
    if not results.is_dir():
        raise UserError(f"results folder {results} does not exist; pass --results DIR (where `evalboard run` saved runs)")
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give the page's file name, e.g. {output / 'index.html'}")
    if rounds < 0:
        raise UserError(f"--rounds must be 0 or more, not {rounds}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    runs, skipped = scan_runs(results)
    unreadable = [(str(folder), f"{why}; the run is skipped") for folder, why in skipped]
    cells = load_cells(runs)
    models = model_infos(cells, runs)
    timings["load_runs_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    frame = item_score_frame(cells, threads=threads, cache=cache, unreadable=unreadable)
    timings["read_samples_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    ratings = board_ratings(frame, rounds=rounds, seed=seed)
    timings["ratings_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    data = export_data(cells, models, ratings, rounds, seed)
    arenas = arena_views(results, rounds, seed)
    board = Board(title=title, cells=cells, models=models, ratings=ratings, rounds=rounds, seed=seed,
                  failures=read_failures(results), export_data=data, unreadable=unreadable, arenas=arenas)
    html = render(board, {r.run_id: r for r in runs})
    directory = output.parent
    exports = {
        directory / "scores.json": json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        directory / "scores.csv": _csv(score_table(cells, models)),
        directory / "ratings.json": json.dumps({"schema": EXPORT_SCHEMA, **data["ratings"],
                                                "ratings": ratings_records(ratings)},
                                               indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        directory / "ratings.csv": _csv(ratings),
    }
    if output.name in {p.name for p in exports}:
        raise UserError(f"--output {output} would be overwritten by an export; name the page e.g. index.html")
    for path, text in exports.items():
        write_text_atomic(path, text)
    write_text_atomic(output, html)
    timings["render_s"] = time.perf_counter() - clock
    return BuildReport(page=output, exports=sorted(exports), models=len(models), columns=len(data["columns"]),
                       runs=len(runs), rated_items=int(len(frame)), unreadable=unreadable, timings=timings)
