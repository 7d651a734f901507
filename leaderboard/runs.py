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

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from evalboard.fingerprint import stable_hash
from evalboard.records.run_record import HarnessInfo, RunRecord, TaskResult

CURRENT = "current"
SUPERSEDED = "superseded"
STALE = "stale"
DIFFERS = "differs"

CELL_COLUMNS = [
    "run_id", "created_at", "model", "spec", "model_fp", "task", "column", "formulation", "num_fewshot",
    "metric", "variant", "higher_is_better", "value", "stderr", "n", "task_fp", "items_hash", "n_items",
    "failed_items", "samples_path", "imported", "status", "reason",
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
    harness: HarnessInfo
    imported: str | None
    run_ids: list[str] = field(default_factory=list)
    cost_per_1k_items_usd: float | None = None
    latency_mean_s: float | None = None
    output_tokens_per_s: float | None = None

    @property
    def access(self) -> str:
        return {True: "open", False: "closed"}.get(self.open_weights, "unknown")  # type: ignore[arg-type]


def run_variant(record: RunRecord, entry: TaskResult | None = None) -> str:
    """How a run's prompts were dressed and where its numbers came from, as a short tag. An
    imported task that joined the evalboard task it mirrors (`entry.source_fingerprint`) was
    measured the same way as evalboard's own, so it carries no import tag."""
    parts = []
    if record.imported is not None and (entry is None or entry.source_fingerprint is None):
        parts.append(record.imported.from_)
    style = record.settings.style
    if style.apply_chat_template:
        parts.append("chat")
    if style.system_prompt:
        parts.append(f"system:{stable_hash(style.system_prompt)[:6]}")
    return "+".join(parts)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _run_cells(record: RunRecord) -> Iterable[dict[str, Any]]:
    model = record.model
    for task, entry in sorted(record.tasks.items()):
        variant = run_variant(record, entry)
        metric = entry.primary_metric
        value = entry.metrics.get(metric)  # None: the primary metric was never computed (no item scored)
        column = Column(task, entry.formulation, entry.num_fewshot, metric, variant)
        samples_path = record.samples_path(task)
        yield {
            "run_id": record.run_id,
            "created_at": record.created_at,
            "model": model.label or model.spec,
            "spec": model.spec,
            "model_fp": model.fingerprint,
            "task": task,
            "column": column,
            "formulation": column.formulation,
            "num_fewshot": column.num_fewshot,
            "metric": metric,
            "variant": variant,
            "higher_is_better": entry.higher_is_better,
            "value": _number(value.value if value is not None else None),
            "stderr": _number(value.stderr if value is not None else None),
            "n": value.n if value is not None else 0,
            "task_fp": entry.task_fingerprint,
            "items_hash": entry.items_hash,
            "n_items": entry.n_items,
            "failed_items": entry.failed_items,
            "samples_path": str(samples_path) if samples_path is not None else None,
            "imported": record.imported is not None,
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
    ordered = sorted(runs, key=lambda r: (r.created_at, r.run_id))
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
        usage = record.usage
        run_items = sum(t.n_items for t in record.tasks.values())
        if usage.cost_usd is None or record.imported is not None:
            priced = False
        else:
            cost += usage.cost_usd
            items += run_items
        if usage.latency_mean_s is not None:
            latencies.append((usage.latency_mean_s, float(usage.requests or 1)))
        rate = usage.output_tokens_per_s
        if rate and usage.output_tokens:
            tokens += float(usage.output_tokens)
            token_seconds += float(usage.output_tokens) / rate
    per_1k = cost / items * 1000.0 if priced and items else None
    throughput = tokens / token_seconds if token_seconds > 0 else None
    return per_1k, _weighted_mean(latencies), throughput


def start_order(run: RunRecord) -> tuple[str, str]:
    """Runs in the order they started; the id breaks ties only (two runs started in the same second
    have ids that sort by their random hash)."""
    return run.created_at, run.run_id


def model_infos(cells: pd.DataFrame, runs: Sequence[RunRecord]) -> dict[str, ModelInfo]:
    """One ModelInfo per model label, from its newest run and the runs behind its current cells."""
    by_id = {r.run_id: r for r in runs}
    infos: dict[str, ModelInfo] = {}
    for label, group in cells.groupby("model", sort=True):
        newest = by_id[group["run_id"].iloc[-1]]
        model = newest.model
        info = dict(model.info)
        open_weights = info.get("open_weights")
        parameters = info.get("parameters")
        shown = group[group["status"].isin([CURRENT, DIFFERS])]["run_id"].unique()
        per_1k, latency, throughput = _usage_figures(sorted((by_id[r] for r in shown), key=start_order))
        infos[str(label)] = ModelInfo(
            label=str(label),
            spec=model.spec,
            fingerprint=model.fingerprint,
            open_weights=open_weights if isinstance(open_weights, bool) else None,
            parameters=int(parameters) if isinstance(parameters, (int, float)) and parameters > 0 else None,
            info=info,
            newest_run=newest.run_id,
            harness=newest.harness,
            imported=newest.imported.from_ if newest.imported is not None else None,
            run_ids=sorted(group["run_id"].unique()),
            cost_per_1k_items_usd=per_1k,
            latency_mean_s=latency,
            output_tokens_per_s=throughput,
        )
    return infos
