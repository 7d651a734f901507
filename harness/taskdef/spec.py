"""The declarative task definition: one YAML file per task, validated strictly here.

A task file says where the items come from, how a document becomes a prompt (Jinja2 templates
over the normalised document), which shape it has (multiple choice, multiple inputs, generate
until, rolling loglikelihood: `evalboard.taskdef.shapes`), which formulations it supports and how
it is scored (built-in filters and metrics, or a hook). Python hooks (a module named by `hooks:`
beside the YAML file) only do what a template can't: turn source rows into documents, fixed
exemplars, and scoring that no built-in covers.

Validation is strict (pydantic, `extra="forbid"`, no coercion): `stop: "Q:"` is not a list,
`chat: "false"` is not a boolean and `num_fewshot: 2.9` is not a count; each problem is one line
naming the file, the field and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from evalboard.errors import UserError
from evalboard.taskdef.data import DataSpec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PromptSpec(_Section):
    text: str = ""  # Jinja2 template over the document: what the model is asked
    description: str = ""  # template prepended once, before few-shot examples
    target: str = ""  # template: a few-shot example's answer / the gold of generate tasks
    choices: str = "choices"  # Jinja2 expression: the continuations scored (multiple choice)
    answer: str = "answer"  # expression: the gold, as an index, a letter or the choice's text
    letter_text: str = ""  # template for the generative letter-answer formulation
    contexts: str = "contexts"  # expression (multiple inputs): one context per option
    continuation: str = ""  # template (multiple inputs): what is scored after each context
    rolling_text: str = "text"  # expression (rolling loglikelihood): the text whose likelihood is scored
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"


class FewshotSpec(_Section):
    # seeded: per document (seed, id); lm_eval_random: lm-eval's default sampler, the i-th draw of one
    # Random(seed) for the split's i-th document; first_n / fixed: in order
    sampler: Literal["seeded", "first_n", "fixed", "lm_eval_random"] = "seeded"
    match_field: str | None = None  # examples must share this field (MMLU: subject)
    fixed_hook: str | None = None  # hook returning fixed exemplars (documents) for "fixed"
    # lm_eval_random: draw k + 1 and keep k, as lm-eval does for a task without a test split (it then
    # takes the evaluated split for the few-shot one and draws one spare to drop the document itself)
    draw_one_more: bool = False


class GenerationSpec(_Section):
    max_new_tokens: int = Field(default=256, gt=0)
    stop: tuple[str, ...] = Field(default=(), strict=False)  # a YAML list; a bare string is an error
    temperature: float = Field(default=0.0, ge=0.0, strict=False)  # an int (0, 1) is a fine float
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, strict=False)
    top_k: int = Field(default=0, ge=0)


class FilterStep(BaseModel):
    """One step of an answer-filter pipeline: a built-in function and its arguments
    (`evalboard.taskdef.scorers.filters` checks them)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    function: str


class FilterPipeline(_Section):
    name: str
    steps: tuple[FilterStep, ...] = Field(strict=False)


class MetricSpec(BaseModel):
    """A built-in metric and its options (`evalboard.taskdef.scorers.text_metrics` checks them)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    metric: str


class TaskSpec(_Section):
    name: str
    description: str = ""
    mirrors: str = ""  # the reference task this one reproduces (e.g. "lm-eval arc_easy")
    type: str  # a registered task shape (evalboard.taskdef.shapes)
    formulations: tuple[str, ...] | None = Field(default=None, strict=False)  # None: all the shape has
    data: DataSpec
    prompt: PromptSpec
    source_file: Path = Field(exclude=True, strict=False)
    hooks: str | None = None
    num_fewshot: int = Field(default=0, ge=0)
    fewshot: FewshotSpec = FewshotSpec()
    primary_metric: str = "acc"
    group_field: str | None = None  # adds macro averages over this field (MMLU: subject)
    generation: GenerationSpec = GenerationSpec()
    filters: tuple[FilterPipeline, ...] = Field(default=(), strict=False)  # generate: answer extraction
    metrics: tuple[MetricSpec, ...] = Field(default=(), strict=False)  # generate: built-in metrics
    scorer: str | None = None  # hook: scores one document (see the shape for its arguments)
    batch_scorer: str | None = None  # hook: scores all documents at once (parallel execution)
    chat: bool = False  # always prompt as a chat (a task's instruct-model variant)
    chat_variant_of: str | None = None  # the plain task this is the chat variant of
    requires_code_execution: bool = False
    higher_is_better: bool = True

    @field_validator("type")
    @classmethod
    def _known_shape(cls, value: str) -> str:
        from evalboard.taskdef.shapes import shape_names

        if value not in shape_names():
            raise ValueError(f"unknown task type {value!r}; allowed: {', '.join(shape_names())}")
        return value

    def resolved(self) -> dict[str, Any]:
        """The definition as data (for fingerprints and run records)."""
        data = self.model_dump(mode="json")
        data["source_file"] = self.source_file.name
        return data

    def hook_source(self) -> str:
        if not self.hooks:
            return ""
        hook_file = self.source_file.parent / f"{self.hooks}.py"
        return hook_file.read_text(encoding="utf-8") if hook_file.is_file() else ""

    def definition_hash(self) -> str:
        blob = json.dumps(self.resolved(), sort_keys=True, default=str) + self.hook_source()
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def _one_line(path: Path, error: ValidationError) -> str:
    """The first problem pydantic found, as one line: file, field, what is wrong or allowed."""
    first = error.errors()[0]
    where = _field_path(first["loc"])
    if first["type"] == "extra_forbidden":
        section: Any = TaskSpec
        for part in first["loc"][:-1]:
            annotation = section.model_fields.get(str(part)) if isinstance(part, str) else None
            inner = getattr(annotation, "annotation", None) if annotation else None
            section = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else section
        allowed = ", ".join(name for name in section.model_fields if name != "source_file")
        return f"task file {path}: unknown key `{where}`; allowed here: {allowed}"
    if first["type"] == "missing":
        return f"task file {path}: the required key `{where}` is missing"
    message = first["msg"].removeprefix("Value error, ")
    return f"task file {path}: `{where}`: {message} (got {first.get('input')!r})"


def parse_task_spec(raw: Any, path: Path) -> TaskSpec:
    if not isinstance(raw, dict):
        raise UserError(f"task file {path} must be a YAML mapping with name, type, data, prompt")
    try:
        return TaskSpec.model_validate({**raw, "source_file": path})
    except ValidationError as exc:
        raise UserError(_one_line(path, exc)) from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"task file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except (OSError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"task file {path} is not valid YAML: {reason}") from None


def _with_includes(raw: Any, path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """`include: OTHER.yaml` (lm-eval's spelling): the other file's keys, then this file's on top
    (top-level keys replace, as in lm-eval), so a variant states only what differs."""
    if not isinstance(raw, dict) or "include" not in raw:
        return raw
    included = (path.parent / str(raw["include"])).resolve()
    if included in seen or not included.is_file():
        problem = "includes itself" if included in seen else f"includes {included}, which does not exist"
        raise UserError(f"task file {path} {problem}")
    base = _with_includes(_read_yaml(included), included, (*seen, path.resolve()))
    if not isinstance(base, dict):
        raise UserError(f"task file {included} (included by {path}) must be a YAML mapping")
    return {**base, **{k: v for k, v in raw.items() if k != "include"}}


def load_task_spec(path: Path) -> TaskSpec:
    """Parse one task file; any problem is a one-line UserError naming the file and the field."""
    return parse_task_spec(_with_includes(_read_yaml(path), path), path)
