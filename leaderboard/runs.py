"""Runs -> cells: one row per (run, task), each with the status that decides what the board shows.

A *column* of the board is one way of measuring one task: (task, formulation, few-shot count,
primary metric, variant), where the variant says how prompts were dressed (chat template, system
prompt) and where the numbers came from (e.g. imported from lm-eval). Cells measured differently
land in different columns, so they are never averaged or compared silently.

A *model* on the board is a run's model label (the spec unless a label was given); its fingerprint
says whether the weights (or adapter, dtype, chat template...) changed.

Status of each (run, task) cell, decided from the store alone and independent of read order:

- `current`: the newest cell of this model in this column, under the model's newest fingerprint;
- `superseded`: an older cell with the same model and task fingerprints as the current one;
- `stale`: measured under a model fingerprint that is no longer the model's newest, or under a task
  fingerprint that the model's newer cell in the column replaced (weights or task changed since);
- `differs`: current for its model, but measured under a task fingerprint other than the one most
  models in the column share (a different seed, definition or data version). Shown, marked, and
  kept out of averages and ratings.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from evalboard.fingerprint import stable_hash
from evalboard.records.run_record import RunRecord

CURRENT = "current"
SUPERSEDED = "superseded"
STALE = "stale"
DIFFERS = "differs"

CELL_COLUMNS = [
    "run_id", "created_at", "model", "spec", "model_fp", "task", "column", "formulation", "num_fewshot",
    "metric", "variant", "higher_is_better", "value", "stderr", "n", "task_fp", "items_hash", "n_items",
    "failed_items", "samples_path", "status", "reason",
]


@dataclass(frozen=True, order=True)
class Column:
    """One way of measuring one task; cells in one column are comparable."""

    task: str
    formulation: str
    num_fewshot: int
    metric: str
    variant: str = ""

    @property
    def id(self) -> str:
        parts = [self.task, self.formulation, f"{self.num_fewshot}-shot", self.metric]
        return "|".join(parts + ([self.variant] if self.variant else []))

    @property
    def detail(self) -> str:
        """The measurement, in words (column sub-header)."""
        parts = [self.metric, self.formulation, f"{self.num_fewshot}-shot"]
        return " · ".join(parts + ([self.variant] if self.variant else []))


@dataclass
class ModelInfo:
    """What the board says about one model (from its newest run, plus run-level usage)."""

    label: str
    spec: str
    fingerprint: str
    open_weights: bool | None
    parameters: int | None
    info: dict[str, Any]
    newest_run: str
    harness: dict[str, Any]
    imported: str | None
    run_ids: list[str] = field(default_factory=list)
    cost_per_1k_items_usd: float | None = None
    latency_mean_s: float | None = None
    output_tokens_per_s: float | None = None

    @property
    def access(self) -> str:
        return {True: "open", False: "closed"}.get(self.open_weights, "unknown")  # type: ignore[arg-type]


def run_variant(data: dict[str, Any]) -> str:
    """How a run's prompts were dressed and where its numbers came from, as a short tag."""
    parts = []
    imported = data.get("imported")
    if imported:
        parts.append(str(imported.get("from", "imported")))
    style = (data.get("settings") or {}).get("style") or {}
    if style.get("apply_chat_template"):
        parts.append("chat")
    if style.get("system_prompt"):
        parts.append(f"system:{stable_hash(style['system_prompt'])[:6]}")
    return "+".join(parts)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _run_cells(record: RunRecord) -> Iterable[dict[str, Any]]:
    data = record.data
    model = data["model"]
    variant = run_variant(data)
    for task, entry in sorted(data["tasks"].items()):
        metric = entry["primary_metric"]
        value = entry.get("metrics", {}).get(metric, {})
        column = Column(task, str(entry.get("formulation")), int(entry.get("num_fewshot") or 0), metric, variant)
        samples_file = entry.get("samples_file")
        samples_path = str(record.path / samples_file) if record.path is not None and samples_file else None
        yield {
            "run_id": record.run_id,
            "created_at": str(data["created_at"]),
            "model": str(model.get("label") or model["spec"]),
            "spec": str(model["spec"]),
            "model_fp": str(model.get("fingerprint")),
            "task": task,
            "column": column,
            "formulation": column.formulation,
            "num_fewshot": column.num_fewshot,
            "metric": metric,
            "variant": variant,
            "higher_is_better": bool(entry.get("higher_is_better", True)),
            "value": _number(value.get("value")),
            "stderr": _number(value.get("stderr")),
            "n": int(value.get("n") or 0),
            "task_fp": str(entry.get("task_fingerprint")),
            "items_hash": entry.get("items_hash"),
            "n_items": int(entry.get("n_items") or 0),
            "failed_items": int(entry.get("failed_items") or 0),
            "samples_path": samples_path,
        }


def _resolve_status(cells: pd.DataFrame) -> pd.DataFrame:
    """Adds `status` and `reason` (see the module docstring). Rows must be sorted oldest first."""
    status = pd.Series(SUPERSEDED, index=cells.index, dtype=object)
    reason = pd.Series("", index=cells.index, dtype=object)
    newest_fp = cells.groupby("model", sort=False)["model_fp"].last()  # the model's newest fingerprint
    for (_, _), group in cells.groupby(["model", "column"], sort=False):
        head = group.index[-1]
        current_model_fp = newest_fp[cells.at[head, "model"]]
        if cells.at[head, "model_fp"] == current_model_fp:
            status[head] = CURRENT
        else:
            status[head] = STALE
            reason[head] = "model changed since: its newest runs have a different model fingerprint"
        for index in group.index[:-1]:
            if cells.at[index, "model_fp"] != current_model_fp:
                status[index], reason[index] = STALE, "model fingerprint changed since this run"
            elif cells.at[index, "task_fp"] != cells.at[head, "task_fp"]:
                status[index], reason[index] = STALE, "task fingerprint changed since this run"
            else:
                reason[index] = f"a newer run ({cells.at[head, 'run_id']}) measured the same"
    cells = cells.assign(status=status, reason=reason)
    # Within a column, the reference task fingerprint is the one most current cells share
    # (ties: the one with the newest cell); current cells under another are marked, not mixed in.
    current = cells[cells["status"] == CURRENT]
    for _, group in current.groupby("column", sort=False):
        counts = group.groupby("task_fp", sort=False).agg(models=("model", "size"), newest=("order", "max"))
        reference = counts.sort_values(["models", "newest"], ascending=False).index[0]
        odd = group.index[group["task_fp"] != reference]
        cells.loc[odd, "status"] = DIFFERS
        cells.loc[odd, "reason"] = (
            "measured under a different task fingerprint than most models in this column "
            "(other seed, task definition, data, generation settings or evalboard scoring code)"
        )
    return cells


def load_cells(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """Every (run, task) of the store as one DataFrame (CELL_COLUMNS), oldest first, with status."""
    ordered = sorted(runs, key=lambda r: (str(r.data["created_at"]), r.run_id))
    rows = [cell for record in ordered for cell in _run_cells(record)]
    if not rows:
        return pd.DataFrame(columns=CELL_COLUMNS)
    cells = pd.DataFrame(rows)
    cells["order"] = range(len(cells))
    cells = _resolve_status(cells)
    return cells.drop(columns="order")[CELL_COLUMNS]


def _weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total > 0 else None


def _usage_figures(records: list[RunRecord]) -> tuple[float | None, float | None, float | None]:
    """($ per 1k items, mean latency s, output tokens/s) over the runs behind a model's current cells."""
    cost, items, priced = 0.0, 0, True
    latencies: list[tuple[float, float]] = []
    tokens, token_seconds = 0.0, 0.0
    for record in records:
        usage = record.data.get("usage") or {}
        run_items = sum(int(t.get("n_items") or 0) for t in record.tasks.values())
        if usage.get("cost_usd") is None or record.data.get("imported"):
            priced = False
        else:
            cost += float(usage["cost_usd"])
            items += run_items
        if usage.get("latency_mean_s") is not None:
            latencies.append((float(usage["latency_mean_s"]), float(usage.get("requests") or 1)))
        rate = usage.get("output_tokens_per_s")
        if rate and usage.get("output_tokens"):
            tokens += float(usage["output_tokens"])
            token_seconds += float(usage["output_tokens"]) / float(rate)
    per_1k = cost / items * 1000.0 if priced and items else None
    throughput = tokens / token_seconds if token_seconds > 0 else None
    return per_1k, _weighted_mean(latencies), throughput


def model_infos(cells: pd.DataFrame, runs: Sequence[RunRecord]) -> dict[str, ModelInfo]:
    """One ModelInfo per model label, from its newest run and the runs behind its current cells."""
    by_id = {r.run_id: r for r in runs}
    infos: dict[str, ModelInfo] = {}
    for label, group in cells.groupby("model", sort=True):
        newest = by_id[group["run_id"].iloc[-1]]
        model = newest.data["model"]
        info = dict(model.get("info") or {})
        open_weights = info.get("open_weights")
        parameters = info.get("parameters")
        shown = group[group["status"].isin([CURRENT, DIFFERS])]["run_id"].unique()
        per_1k, latency, throughput = _usage_figures([by_id[r] for r in sorted(shown)])
        infos[str(label)] = ModelInfo(
            label=str(label),
            spec=str(model["spec"]),
            fingerprint=str(model.get("fingerprint")),
            open_weights=open_weights if isinstance(open_weights, bool) else None,
            parameters=int(parameters) if isinstance(parameters, (int, float)) and parameters > 0 else None,
            info=info,
            newest_run=newest.run_id,
            harness=dict(newest.data.get("harness") or {}),
            imported=(newest.data.get("imported") or {}).get("from"),
            run_ids=sorted(group["run_id"].unique()),
            cost_per_1k_items_usd=per_1k,
            latency_mean_s=latency,
            output_tokens_per_s=throughput,
        )
    return infos


def read_first_samples(path: str | Path, count: int) -> list[dict[str, Any]]:
    """The first `count` lines of a samples file (for the drill-down), without reading the rest."""
    out: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    out.append(json.loads(line))
                if len(out) >= count:
                    break
    except (OSError, json.JSONDecodeError):
        return out
    return out
