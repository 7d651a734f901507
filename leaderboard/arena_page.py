"""The page's Arena section: per arena (a prompt set and its judge, or imported human battles), the
ratings with intervals and ranks, style-controlled beside raw for judged arenas, the judge's
consistency figures, the win-rate matrix as a heatmap, battle counts, and a few battles in full
(the prompt, both answers, the judge's reply and verdict in both orders).

Plain data for the template; everything user-written goes through jinja2's autoescape there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evalboard.leaderboard.arena import arena_ratings, win_rate_vs, win_rates
from evalboard.leaderboard.style import style_controlled_ratings
from evalboard.records.arena_record import ArenaRecord, answer_usage_text, arena_dir, list_arenas, load_judgments

HEATMAP_MODELS = 16  # the heatmap shows the top models only: 129 x 129 cells would be unreadable
DRILL_DOWN = 4  # battles shown in full per arena
TEXT_CHARS = 1200


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + " …"


def _heat(share: float) -> str:
    """A background colour from red (0) through white (0.5) to green (1)."""
    if not math.isfinite(share):
        return "#f1f5f9"
    t = abs(share - 0.5) * 2
    r, g, b = (220, 38, 38) if share < 0.5 else (22, 163, 74)
    mix = [round(255 + (c - 255) * t * 0.75) for c in (r, g, b)]
    return f"rgb({mix[0]},{mix[1]},{mix[2]})"


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%" if math.isfinite(value) else "—"


def arena_view(record: ArenaRecord, folder: Path, rounds: int, seed: int) -> dict[str, Any]:
    table = arena_ratings(record, rounds=rounds, seed=seed)
    judgments = load_judgments(folder)
    style: dict[str, dict[str, float]] = {}
    coefficients: dict[str, float] = {}
    if judgments and record.judges:
        styled, coefficients = style_controlled_ratings(judgments, record.judges[0], rounds=min(rounds, 200), seed=seed)
        style = {str(r.model): {"rating": r.rating, "low": r.ci_low, "high": r.ci_high} for r in styled.itertuples()}
    rows = []
    for r in table.itertuples(index=False):
        s = style.get(str(r.model))
        rows.append({
            "rank": int(r.rank), "model": str(r.model), "rating": f"{r.rating:.0f}",
            "ci": f"{r.ci_low:.0f}–{r.ci_high:.0f}" if math.isfinite(r.ci_low) else "—",
            "battles": f"{int(r.battles):,}",
            "style": f"{s['rating']:.0f}" if s else "",
            "style_ci": f"{s['low']:.0f}–{s['high']:.0f}" if s and math.isfinite(s["low"]) else "",
        })
    top = [str(m) for m in table["model"][:HEATMAP_MODELS]]
    share = win_rates(record)
    heatmap = [{"model": a, "cells": [{"text": "" if a == b else _percent(float(share.loc[a, b])),
                                       "color": "#fff" if a == b else _heat(float(share.loc[a, b]))} for b in top]}
               for a in top]
    baseline = []
    if record.baseline is not None and record.baseline in record.models:
        for model, rate in win_rate_vs(record, record.baseline, rounds=max(rounds, 100), seed=seed).iterrows():
            baseline.append({"model": str(model), "rate": _percent(rate.win_rate),
                             "ci": f"{_percent(rate.ci_low)}–{_percent(rate.ci_high)}", "battles": int(rate.battles)})
    primary = record.judges[0] if record.judges else None
    pairs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for j in judgments:
        if j.judge != primary:
            continue
        entry = pairs.setdefault((j.model_a, j.model_b, j.prompt_id), {
            "prompt_id": j.prompt_id, "model_a": j.model_a, "model_b": j.model_b,
            "turns": [_clip(t) for t in j.turns], "answer_a": _clip(j.answer_a[-1]), "answer_b": _clip(j.answer_b[-1]),
            "orders": []})
        shown_first = j.model_a if j.order == "ab" else j.model_b
        entry["orders"].append({"first": shown_first, "reply": _clip(j.reply), "verdict": j.verdict or "unparseable"})
    drill = [p for p in sorted(pairs.values(), key=lambda p: (p["prompt_id"], p["model_a"], p["model_b"]))
             if len(p["orders"]) == 2][:DRILL_DOWN]
    return {
        "name": record.name, "anchor": f"arena-{record.name}", "source": record.source,
        "prompt_set": record.prompt_set, "battles": f"{record.battles:,.0f}", "models": len(record.models),
        "rows": rows, "has_style": bool(style),
        "style_coefficients": {k: f"{v:+.2f}" for k, v in coefficients.items()},
        "judges": [{"judge": q.judge, "pairs": q.pairs, "consistent": _percent(q.consistent), "ties": _percent(q.ties),
                    "unparseable": _percent(q.unparseable),
                    "agreement": ", ".join(f"{_percent(v)} with {k}" for k, v in q.agreement.items())}
                   for q in record.judge_quality],
        "seconds_per_battle": (f"{record.judge_seconds_per_battle:.2f} s"
                               if record.judge_seconds_per_battle is not None else None),
        "cost_per_battle": f"${record.judge_cost_per_battle_usd:.5f}" if record.judge_cost_per_battle_usd else None,
        "answer_usage": {m: answer_usage_text(u) for m, u in record.answer_usage.items()},
        "heatmap_models": top, "heatmap": heatmap, "baseline": record.baseline, "baseline_rows": baseline,
        "drill": drill,
    }


def arena_views(results: Path, rounds: int, seed: int) -> list[dict[str, Any]]:
    """One view per arena with at least two models, by name."""
    return [arena_view(record, arena_dir(results, record.name), rounds, seed)
            for record in list_arenas(results) if len(record.models) >= 2]
