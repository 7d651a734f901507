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

import difflib
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
    # "fixed" exemplars written in the task file itself (lm-eval's fewshot_config.samples)
    samples: tuple[dict[str, Any], ...] = Field(default=(), strict=False)
    # lm_eval_random: draw k + 1 and drop the evaluated document, as lm-eval does whenever its task's
    # few-shot split equals its test split, which includes both being unset (HellaSwag, Winogrande,
    # DROP: lm-eval's task files name no test split)
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
    group_field: str | None = None  # per-group rows and macro averages over this field (MMLU: subject)
    # The groups are lm-eval subtasks (MMLU's subjects): --limit takes N of each and the group's
    # stderr is pooled, as lm-eval's group row. False: lm-eval runs one task (MMLU-Pro), so --limit
    # and the stderr are over all items and the groups' rows are a breakdown only.
    lm_eval_group: bool = True
    # A group of tasks, one per Hub config (MMLU's subjects): `<name>_<config>` holds that config's
    # items only (lm-eval's mmlu_<subject>); the group itself keeps all of them (taskdef.registry).
    subtasks: Literal["per_hub_config"] | None = None
    subtask_of: str | None = None  # the group this task is a member of (set on the generated members)
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
        # Group membership changes nothing asked or scored: a group's fingerprint stays what it was.
        data = self.model_dump(mode="json", exclude={"subtasks", "subtask_of"})
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


def _allowed_keys(location: tuple[int | str, ...]) -> list[str]:
    """The keys the section holding `location`'s last key allows."""
    section: Any = TaskSpec
    for part in location[:-1]:
        annotation = section.model_fields.get(str(part)) if isinstance(part, str) else None
        inner = getattr(annotation, "annotation", None) if annotation else None
        section = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else section
    return [name for name in section.model_fields if name != "source_file"]


def _problem_line(path: Path, problem: Any) -> str:
    """One pydantic problem as one line: file, field, what is wrong and what is allowed."""
    where = _field_path(problem["loc"])
    if problem["type"] == "extra_forbidden":
        allowed = _allowed_keys(problem["loc"])
        near = difflib.get_close_matches(str(problem["loc"][-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean `{near[0]}`? " if near else ""
        return f"task file {path}: unknown key `{where}`; {hint}allowed here: {', '.join(allowed)}"
    if problem["type"] == "missing":
        return f"task file {path}: the required key `{where}` is missing"
    message = problem["msg"].removeprefix("Value error, ")
    return f"task file {path}: `{where}`: {message} (got {problem.get('input')!r})"


def _problem_lines(path: Path, error: ValidationError) -> list[str]:
    return [_problem_line(path, problem) for problem in error.errors()]


# Task-file fields that are Jinja2 expressions; the other prompt fields are templates.
_EXPRESSIONS = ("choices", "answer", "contexts", "rolling_text")
_TEMPLATES = ("text", "description", "target", "letter_text", "continuation")


def semantic_problems(spec: TaskSpec) -> list[str]:
    """What the schema alone cannot see: a template that does not compile, a formulation the task's
    shape does not have, a hook module that is not there. One line each. (A primary metric the task
    does not report is found when its formulation is built: `Shape.check_primary_metric`.)"""
    from evalboard.taskdef.prompting import check_syntax
    from evalboard.taskdef.shapes import shapes_for

    where = f"task file {spec.source_file}"
    problems = []
    for field in (*_TEMPLATES, *_EXPRESSIONS):
        source = getattr(spec.prompt, field)
        why = check_syntax(source, expression=field in _EXPRESSIONS) if source else None
        if why:
            kind = "expression" if field in _EXPRESSIONS else "template"
            problems.append(f"{where}: `prompt.{field}: {source}` is not a valid Jinja2 {kind} ({why})")
    shapes = shapes_for(spec.type)
    if spec.formulations is not None:
        unknown = sorted(set(spec.formulations) - {shape.formulation for shape in shapes})
        if unknown:
            problems.append(f"{where}: `formulations`: {', '.join(unknown)} do not exist for type {spec.type}; "
                            f"it has {', '.join(shape.formulation for shape in shapes)}")
    if spec.hooks and not (spec.source_file.parent / f"{spec.hooks}.py").is_file():
        problems.append(f"{where}: `hooks: {spec.hooks}` names {spec.source_file.parent / spec.hooks}.py, which "
                        f"does not exist; a task file alone needs no hooks: remove the key")
    hook_names = [name for name in (spec.scorer, spec.batch_scorer, spec.fewshot.fixed_hook) if name]
    if hook_names and not spec.hooks:
        problems.append(f"{where}: hook function(s) {', '.join(hook_names)} are named but there is no `hooks:` "
                        f"module to find them in; add `hooks: NAME` (NAME.py beside the task file)")
    return problems


def parse_task_spec(raw: Any, path: Path) -> TaskSpec:
    if not isinstance(raw, dict):
        raise UserError(f"task file {path} must be a YAML mapping with name, type, data, prompt")
    try:
        spec = TaskSpec.model_validate({**raw, "source_file": path})
    except ValidationError as exc:
        lines = _problem_lines(path, exc)
        more = f" (and {len(lines) - 1} more; `evalboard validate {path}` lists them)" if len(lines) > 1 else ""
        raise UserError(lines[0] + more) from None
    problems = semantic_problems(spec)
    if problems:
        raise UserError(problems[0])
    return spec


def task_file_problems(path: Path) -> tuple[TaskSpec | None, list[str]]:
    """Every problem of one task file, one line each (what `evalboard validate` prints), and the
    parsed task when the schema accepts it."""
    try:
        raw = _with_includes(_read_yaml(path), path)
    except UserError as exc:
        return None, [str(exc)]
    if not isinstance(raw, dict):
        return None, [f"task file {path} must be a YAML mapping with name, type, data, prompt"]
    try:
        spec = TaskSpec.model_validate({**raw, "source_file": path})
    except ValidationError as exc:
        return None, _problem_lines(path, exc)
    return spec, semantic_problems(spec)


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
