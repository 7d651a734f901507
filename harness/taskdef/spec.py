"""The declarative task definition: one YAML file per task, parsed and validated here.

A task file says where the items come from, how a document becomes a prompt (Jinja2 templates
over the normalised document), which formulations it supports and how it is scored. Python hooks
(a module named by `hooks:` beside the YAML file) only do what a template can't: turn source rows
into documents, and score free-form generations.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from evalboard.taskdef.data import DataSpec, HubSource, OfflineSource, OfflineSplit
from evalboard.errors import UserError

TaskType = Literal["multiple_choice", "generate"]


@dataclass(frozen=True)
class PromptSpec:
    text: str  # Jinja2 template over the document: what the model is asked
    description: str = ""  # template prepended once, before few-shot examples
    target: str = ""  # template: the answer shown in few-shot examples (generate tasks)
    choices: str = "choices"  # Jinja2 expression: the continuations scored (multiple choice)
    letter_text: str = ""  # template for the generative letter-answer formulation
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"


@dataclass(frozen=True)
class FewshotSpec:
    sampler: Literal["seeded", "first_n", "fixed"] = "seeded"
    match_field: str | None = None  # examples must share this field (MMLU: subject)
    fixed_hook: str | None = None  # hook returning fixed exemplars (documents) for "fixed"


@dataclass(frozen=True)
class GenerationSpec:
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    mirrors: str  # the reference task this one reproduces (e.g. "lm-eval arc_easy")
    type: TaskType
    data: DataSpec
    prompt: PromptSpec
    source_file: Path
    hooks: str | None = None
    num_fewshot: int = 0
    fewshot: FewshotSpec = FewshotSpec()
    primary_metric: str = "acc"
    group_field: str | None = None  # adds macro averages over this field (MMLU: subject)
    generation: GenerationSpec = GenerationSpec()
    scorer: str | None = None  # hook: score(doc, responses) -> dict (generate tasks)
    batch_scorer: str | None = None  # hook: score all documents at once (e.g. parallel execution)
    chat: bool = False  # always prompt as a chat (a task's instruct-model variant)
    aggregator: str | None = None  # hook: aggregate(samples) -> metrics (optional)
    requires_code_execution: bool = False
    samples_default: int = 1
    higher_is_better: bool = True
    chat_variant_of: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> dict[str, Any]:
        """The definition as data (for fingerprints and run records)."""
        data = asdict(self)
        data["source_file"] = self.source_file.name
        return data

    def definition_hash(self) -> str:
        hook_source = ""
        if self.hooks:
            hook_file = self.source_file.parent / f"{self.hooks}.py"
            if hook_file.is_file():
                hook_source = hook_file.read_text(encoding="utf-8")
        blob = json.dumps(self.resolved(), sort_keys=True, default=str) + hook_source
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _offline(raw: dict[str, Any] | None) -> OfflineSource | None:
    if not raw:
        return None
    splits = {
        name: OfflineSplit(path=entry["path"], format=entry["format"])
        for name, entry in raw.get("splits", {}).items()
    }
    return OfflineSource(package=raw["package"], module=raw["module"], splits=splits)


def _hub(raw: dict[str, Any] | None) -> HubSource | None:
    if not raw:
        return None
    return HubSource(
        path=raw["path"],
        revision=str(raw["revision"]),
        name=raw.get("name"),
        configs=tuple(raw.get("configs", ())),
        split_names=dict(raw.get("split_names", {})),
    )


def _build(raw: dict[str, Any], path: Path) -> TaskSpec:
    data_raw = raw["data"]
    data = DataSpec(
        split=data_raw["split"],
        fewshot_split=data_raw.get("fewshot_split"),
        offline=_offline(data_raw.get("offline")),
        hub=_hub(data_raw.get("hub")),
    )
    generation_raw = dict(raw.get("generation", {}))
    generation_raw["stop"] = tuple(generation_raw.get("stop", ()))
    task_type = raw["type"]
    if task_type not in ("multiple_choice", "generate"):
        raise ValueError(f"type must be multiple_choice or generate, not {task_type!r}")
    return TaskSpec(
        name=raw["name"],
        description=raw.get("description", ""),
        mirrors=raw.get("mirrors", ""),
        type=task_type,
        data=data,
        prompt=PromptSpec(**raw["prompt"]),
        source_file=path,
        hooks=raw.get("hooks"),
        num_fewshot=int(raw.get("num_fewshot", 0)),
        fewshot=FewshotSpec(**raw.get("fewshot", {})),
        primary_metric=raw.get("primary_metric", "acc"),
        group_field=raw.get("group_field"),
        generation=GenerationSpec(**generation_raw),
        scorer=raw.get("scorer"),
        batch_scorer=raw.get("batch_scorer"),
        chat=bool(raw.get("chat", False)),
        aggregator=raw.get("aggregator"),
        requires_code_execution=bool(raw.get("requires_code_execution", False)),
        samples_default=int(raw.get("samples_default", 1)),
        higher_is_better=bool(raw.get("higher_is_better", True)),
        chat_variant_of=raw.get("chat_variant_of"),
        extra=dict(raw.get("extra", {})),
    )


def load_task_spec(path: Path) -> TaskSpec:
    """Parse one task file; any problem is a one-line UserError naming the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"task file {path} is not valid YAML: {reason}") from exc
    if not isinstance(raw, dict):
        raise UserError(f"task file {path} must be a YAML mapping with name, type, data, prompt")
    try:
        return _build(raw, path)
    except KeyError as exc:
        raise UserError(f"task file {path} is missing the required key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise UserError(f"task file {path} is malformed: {exc}") from exc
