"""The typed, self-describing record of one run: one definition (pydantic models) for run.json, a
task's result and a sample line; every writer builds these and every reader goes through them.

docs/results-format.md documents every field (a test holds the two together). Records written
under an older schema are migrated on read (see `_MIGRATIONS`), so the store never needs rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from evalboard.errors import UserError
from evalboard.requests import RequestKind
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

SCHEMA = "evalboard.run/2"


def _omitted_when_none() -> Any:
    """A field that only some records have: left out of the file rather than written as null."""
    return Field(None, exclude_if=lambda value: value is None)


class _Record(BaseModel):
    """A part of the record with a fixed shape: unknown keys are an error, not silently kept."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, ser_json_inf_nan="constants")


# --- run.json --------------------------------------------------------------------------------


class HarnessInfo(_Record):
    """Which harness produced the numbers (evalboard itself, or lm-eval for imported runs)."""

    name: str
    version: str | None = None
    git_commit: str | None = None


class ImportInfo(_Record):
    """Where an imported run came from, so a re-import is recognised and skipped."""

    from_: str = Field(alias="from")
    results_file: str
    sha256: str
    samples_files: list[str] = []


class ModelIdentity(_Record):
    """Which model was evaluated: what the user typed, its display name, and its fingerprint."""

    spec: str
    label: str
    fingerprint: str
    fingerprint_parts: dict[str, Any] = {}
    info: dict[str, Any] = {}  # free-form: whatever the adapter knows (open_weights, parameters, ...)


class PromptStyleSettings(_Record):
    """How prompts were dressed for the whole run."""

    apply_chat_template: bool = False
    system_prompt: str | None = None


class RunSettings(_Record):
    """The run-level options that shaped the requests (a superset: each writer fills what it knows)."""

    num_fewshot: int | None = None
    seed: int | None = None
    limit: int | float | None = None
    data_source: str | None = None
    data_dir: str | None = None
    style: PromptStyleSettings = PromptStyleSettings()
    formulation: str | None = None
    samples_per_problem: int | None = None
    temperature: float | None = None
    max_new_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | None = None
    batch_size: int | str | None = None
    auto_batch_size: dict[str, int] | None = None  # --batch-size auto: the size found for each task
    allow_code_execution: bool | None = None
    gen_kwargs: dict[str, Any] | str | None = None


class RunUsage(_Record):
    """Cost, latency and throughput of the answers the run used; None where unknown."""

    requests: int | None = None
    failed_requests: int | None = None
    retries: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_mean_s: float | None = None
    latency_sum_s: float | None = None
    time_to_first_token_mean_s: float | None = None
    output_tokens_per_s: float | None = None
    unique_requests: int | None = None
    requests_answered_now: int | None = None
    cache_hits: int | None = None
    adapter: dict[str, Any] | None = None  # free-form: this session's own adapter counters


class MetricResult(_Record):
    """One aggregated metric of a task."""

    value: float
    stderr: float | None = None
    n: int


class TaskResult(_Record):
    """One task's result in a run: how it was measured, and the numbers."""

    task_fingerprint: str
    items_hash: str
    mirrors: str = ""
    formulation: str
    num_fewshot: int
    primary_metric: str
    higher_is_better: bool = True
    metrics: dict[str, MetricResult]
    n_items: int
    failed_items: int = 0
    data_origin: str
    generation: dict[str, Any] | None = None  # free-form: the generation parameters
    samples_per_item: int = 1
    samples_file: str | None = None
    groups: int | None = _omitted_when_none()
    # a group task's subtasks (MMLU's subjects): subtask -> metric -> figures, as lm-eval lists them
    subtasks: dict[str, dict[str, MetricResult]] | None = _omitted_when_none()
    lm_eval_version: int | float | str | None = _omitted_when_none()
    # An imported task that joined the evalboard task it is the same as: the fingerprint the other
    # harness's definition gave it (kept for provenance; task_fingerprint is then evalboard's).
    source_fingerprint: str | None = _omitted_when_none()


# --- samples/<task>.jsonl --------------------------------------------------------------------


class SampleRequest(_Record):
    """A request as logged with its sample (the prompt is logged once, on the sample)."""

    continuation: str | None = _omitted_when_none()
    text: str | None = _omitted_when_none()
    params: dict[str, Any] | None = _omitted_when_none()  # free-form: the generation parameters
    sample: int | None = _omitted_when_none()
    kind: RequestKind


class RequestUsage(_Record):
    """What one request cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    cost_usd: float = 0.0
    attempts: int = 1


class SampleResponse(_Record):
    """A model's answer to one request of a sample."""

    logprob: float | None = _omitted_when_none()
    is_greedy: bool | None = _omitted_when_none()
    text: str | None = _omitted_when_none()
    usage: RequestUsage | None = _omitted_when_none()
    error: str | None = _omitted_when_none()
    # a generation that used all of max_new_tokens: cut off (inside a chain of thought, say), and
    # scored as it stands, as lm-eval scores it
    hit_max_new_tokens: bool | None = _omitted_when_none()


class SampleLine(_Record):
    """One evaluated item: what was asked, what came back, how it scored."""

    index: int
    doc_id: str | int
    prompt: str | None = None
    target: Any = None
    requests: list[SampleRequest] = []
    responses: list[SampleResponse] = []
    scores: dict[str, Any] = {}  # free-form: metric -> number, or a list of numbers
    error: str | None = None
    group: Any = _omitted_when_none()
    doc_hash: str | None = _omitted_when_none()
    filtered: dict[str, Any] | None = _omitted_when_none()
    # the exact text the model read: after its chat template, with the tokenizer's special tokens
    model_input: str | None = _omitted_when_none()
    # multiple choice scored by loglikelihood: the option index each accuracy metric chose
    picks: dict[str, int] | None = _omitted_when_none()


class SampleScores(BaseModel):
    """A sample line's item id and scores alone: what the ratings read from millions of lines.
    These two fields mean the same in every schema version, so no migration is needed."""

    model_config = ConfigDict(extra="ignore")

    doc_id: str | int | None = None
    scores: dict[str, Any] | None = None


# --- the record ------------------------------------------------------------------------------


class RunRecord(_Record):
    """run.json: one run of one model on some tasks. Its samples stay beside it on disk and are
    read on demand (`load_samples`, `iter_samples`)."""

    schema_version: Literal[SCHEMA] = Field(default=SCHEMA, alias="schema")  # type: ignore[valid-type]
    run_id: str
    created_at: str
    harness: HarnessInfo
    imported: ImportInfo | None = _omitted_when_none()
    model: ModelIdentity
    settings: RunSettings = RunSettings()
    tasks: dict[str, TaskResult]
    usage: RunUsage = RunUsage()
    wall_time_s: float | None = None
    pid: int | None = _omitted_when_none()

    _path: Path | None = PrivateAttr(None)
    _samples: dict[str, list[SampleLine]] = PrivateAttr(default_factory=dict)
    _stored_schema: str = PrivateAttr(SCHEMA)  # the schema its files on disk were written under

    @property
    def path(self) -> Path | None:
        """The run folder, once saved or loaded."""
        return self._path

    def stored_at(self, folder: Path, schema: str = SCHEMA) -> RunRecord:
        """Where the record's files are and which schema they were written under (so that sample
        lines not yet read are migrated from it)."""
        self._path, self._stored_schema = folder, schema
        return self

    @property
    def samples(self) -> dict[str, list[SampleLine]]:
        """The sample lines in memory, by task (all of a fresh run's; those loaded so far otherwise)."""
        return self._samples

    def with_samples(self, samples: dict[str, list[SampleLine]]) -> RunRecord:
        """Sample lines to keep with the record (a fresh run's, before the store writes them)."""
        self._samples.update(samples)
        return self

    def metric(self, task: str, metric: str | None = None) -> float:
        entry = self.tasks[task]
        return entry.metrics[metric or entry.primary_metric].value

    def rows(self) -> Iterator[dict[str, Any]]:
        """One flat row per (task, metric), for tables."""
        for task, entry in self.tasks.items():
            for metric, value in entry.metrics.items():
                yield {
                    "run_id": self.run_id,
                    "model": self.model.spec,
                    "label": self.model.label,
                    "model_fingerprint": self.model.fingerprint,
                    "task": task,
                    "formulation": entry.formulation,
                    "num_fewshot": entry.num_fewshot,
                    "metric": metric,
                    "value": value.value,
                    "stderr": value.stderr,
                    "n": value.n,
                    "primary": metric == entry.primary_metric,
                    "task_fingerprint": entry.task_fingerprint,
                }

    def to_dataframe(self) -> Any:
        """One row per (task, metric): the model's spec and label, the task, the value and its stderr."""
        import pandas as pd

        return pd.DataFrame(list(self.rows()))

    def samples_df(self, task: str) -> Any:
        """One row per item of `task`: index, doc_id, prompt, target, the model's pick (for
        loglikelihood multiple choice: `pick`, the chosen index as acc scores it, and `pick_norm`
        as acc_norm does), the generated `response` and filtered `answer` (generative tasks),
        `error`, and one column per score. A saved run's samples are read from disk."""
        from evalboard.records.frames import samples_frame

        return samples_frame(self, task)

    def _summary_lines(self) -> list[tuple[str, str]]:
        lines = []
        for task, entry in self.tasks.items():
            value = entry.metrics.get(entry.primary_metric)
            shown = "n/a" if value is None else f"{value.value:.4f}" + (
                f" ± {value.stderr:.4f}" if value.stderr is not None else "")
            lines.append((task, f"{entry.primary_metric} {shown} (n={entry.n_items}, {entry.formulation}, "
                                f"{entry.num_fewshot}-shot)"))
        return lines

    def __repr__(self) -> str:
        """A short summary (a notebook shows this, not every field)."""
        head = f"RunRecord {self.run_id}: {self.model.label}"
        if self.model.label != self.model.spec:
            head += f" ({self.model.spec})"
        body = [f"  {task}: {text}" for task, text in self._summary_lines()] or ["  no tasks"]
        return "\n".join([head, *body])

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_html_(self) -> str:
        """The same summary as a small table, for Jupyter."""
        from html import escape

        rows = "".join(f"<tr><td>{escape(task)}</td><td>{escape(text)}</td></tr>"
                       for task, text in self._summary_lines())
        return (f"<div><strong>RunRecord</strong> <code>{escape(self.run_id)}</code> · "
                f"{escape(self.model.label)} <code>{escape(self.model.spec)}</code>"
                f"<table><tr><th>task</th><th>primary metric</th></tr>{rows}</table></div>")

    def samples_path(self, task: str) -> Path | None:
        """Where the task's sample lines are on disk (None before saving, or when it has none)."""
        file = self.tasks[task].samples_file
        return self._path / file if self._path is not None and file else None

    def iter_samples(self, task: str) -> Iterator[SampleLine]:
        """The task's sample lines, read lazily (a drill-down needs only the first few)."""
        if task in self._samples:
            yield from self._samples[task]
            return
        path = self.samples_path(task)
        if path is None:
            raise KeyError(task)
        yield from read_sample_lines(path, self._stored_schema)

    def load_samples(self, task: str) -> list[SampleLine]:
        if task not in self._samples:
            self._samples[task] = list(self.iter_samples(task))
        return self._samples[task]


# --- reading, with migration from older schemas ----------------------------------------------


def _record_v1(data: dict[str, Any]) -> dict[str, Any]:
    """run/1 had the same run.json fields; only the schema name moves on."""
    return {**data, "schema": "evalboard.run/2"}


_REQUEST_KEYS = set(SampleRequest.model_fields)


def _sample_v1(data: dict[str, Any]) -> dict[str, Any]:
    """run/1 writers other than the evaluator (lm-eval import, synthetic runs) logged a generate
    request's parameters flat beside `kind`; run/2 keeps them under `params` as the evaluator does."""
    requests = []
    for request in data.get("requests") or []:
        flat = {k: v for k, v in request.items() if k not in _REQUEST_KEYS}
        if flat:
            request = {**{k: v for k, v in request.items() if k in _REQUEST_KEYS},
                       "params": {**(request.get("params") or {}), **flat}}
        requests.append(request)
    return {**data, "requests": requests}


_Migration = Callable[[dict[str, Any]], dict[str, Any]]

# schema -> (run.json migration, sample line migration) to the current schema
_MIGRATIONS: dict[str, tuple[_Migration, _Migration]] = {
    "evalboard.run/1": (_record_v1, _sample_v1),
}


class RecordError(UserError, ValueError):
    """A run.json or sample line that is not a valid evalboard record (damaged, or not ours)."""


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "top level"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {error['msg']}{more}"


def read_sample_lines(path: Path, schema: str = SCHEMA) -> Iterator[SampleLine]:
    """Sample lines of a samples file written under `schema`, migrated and validated one by one."""
    migrate = _MIGRATIONS[schema][1] if schema in _MIGRATIONS else None
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            data = json.loads(line)
            try:
                yield SampleLine.model_validate(migrate(data) if migrate else data)
            except ValidationError as exc:
                raise RecordError(f"{path} line {number} is not a valid sample line ({_first_problem(exc)})") from None


def load_run(path: Path) -> RunRecord:
    """A run folder (or its run.json), written under any supported schema, as the current model."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    with open(folder / "run.json", encoding="utf-8") as handle:
        data = json.load(handle)
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA and schema not in _MIGRATIONS:
        raise RecordError(f"{folder} is not an evalboard run (schema {schema!r})")
    migrate = _MIGRATIONS[schema][0] if schema in _MIGRATIONS else None
    try:
        record = RunRecord.model_validate(migrate(data) if migrate else data)
    except ValidationError as exc:
        raise RecordError(f"{folder} is not a valid {schema} record ({_first_problem(exc)})") from None
    return record.stored_at(folder, schema)
