"""The run options, defined once: `RunOptions` gives each option's type, default, help text, CLI
flag and where a nightly config may set it. The `run`/`compare`/`quickstart` flags, `evaluate()`'s
keywords and the nightly config's option keys are all generated from it, and it alone builds the
TaskOptions, AdapterSettings and RunConfig of a run, so the four can never disagree.

Validation is strict (no coercion): `num_fewshot: 2.9`, `limit: true` or `apply_chat_template:
"false"` are errors, not 2, 1 and True. Every error becomes one line that says what is allowed
(`error_line`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, Union

from annotated_types import Ge, Gt, Le, Lt, MinLen
from evalboard.engine.executors import ExecutorChoice, ExecutorSettings, Placement
from evalboard.errors import UserError
from evalboard.requests import FormulationChoice
from evalboard.taskdef.data import DataSourceChoice
from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, Strict, ValidationError

if TYPE_CHECKING:
    from evalboard.engine.evaluator import RunConfig
    from evalboard.models.adapters.base import AdapterSettings
    from evalboard.taskdef.prepared import TaskOptions

# Strict scalars: a YAML `2.9`, `true` or `"8"` is never taken for a whole number, a string
# `"false"` never for a boolean. (A strict float still takes an int: `temperature: 0` is fine.)
StrictInt = Annotated[int, Strict()]
PositiveInt = Annotated[int, Strict(), Gt(0)]
NonNegativeInt = Annotated[int, Strict(), Ge(0)]
# nan and inf are floats too, but no temperature: `--temperature inf` is refused, not sampled with.
NonNegativeFloat = Annotated[float, Strict(), Ge(0), AllowInfNan(False),
                             Field(json_schema_extra={"allowed": "a finite number >= 0"})]
# `--limit 0.01` (lm-eval's spelling): that share of each task's (each group member's) items.
Fraction = Annotated[float, Strict(), Gt(0), Lt(1), Field(json_schema_extra={"allowed": "a fraction between 0 and 1"})]
Probability = Annotated[float, Strict(), Gt(0), Le(1), Field(json_schema_extra={"allowed": "a number in (0, 1]"})]
StrictBool = Annotated[bool, Strict()]
StrictStr = Annotated[str, Strict()]
NonEmptyStr = Annotated[str, Strict(), MinLen(1)]

_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _not_a_boolean_word(path: Path) -> Path:
    """`cache: "false"` is a quoted boolean, not a cache file named false."""
    if str(path).lower() in _BOOLEAN_WORDS:
        raise ValueError("a quoted boolean")
    return path


CachePath = Annotated[Path, AfterValidator(_not_a_boolean_word)]

# Where a nightly config (docs/nightly.md) may set an option: its `defaults:`, a `models:` entry,
# a `tasks:` entry. A cell's options are the defaults, then the task's, then the model's.
RUN_WIDE = frozenset({"defaults"})
PER_MODEL = frozenset({"defaults", "models"})
PER_TASK = frozenset({"defaults", "tasks"})
PER_MODEL_OR_TASK = PER_MODEL | PER_TASK
MODEL_ENTRY_ONLY = frozenset({"models"})  # a model's own label: no default makes sense
NOT_IN_CONFIG: frozenset[str] = frozenset()  # the config's own top-level keys (results:, include_paths:) set these
CONFIG_SECTIONS = ("defaults", "models", "tasks")


@dataclass(frozen=True)
class Option:
    """How one run option is offered: its CLI help, where a nightly config may set it, and its
    CLI flag when that is not `--the-field-name` (a boolean that defaults to true becomes a
    `--no-...` switch)."""

    help: str
    where: frozenset[str]
    flag: str | None = None


class RunOptions(BaseModel):
    """Every setting of one evaluation run except the model and the tasks (the field order is
    the order of the flags in `evalboard run --help`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_fewshot: Annotated[Optional[NonNegativeInt], Option("few-shot examples (default: the task's)", PER_TASK)] = None
    limit: Annotated[Optional[Union[PositiveInt, Fraction]], Option(
        "evaluate only the first N items of each task (a fraction below 1: that share of its items); "
        "a group such as mmlu takes N of each member", PER_TASK)] = None
    batch_size: Annotated[Union[PositiveInt, Literal["auto"]], Option(
        "requests per forward pass of a local model (auto: the largest that fits, found once per task)",
        PER_MODEL)] = 8
    seed: Annotated[StrictInt, Option("seed of the few-shot draw and of sampling", RUN_WIDE)] = 1234
    output_dir: Annotated[Optional[Path], Option("results store (default: results/)", NOT_IN_CONFIG,
                                                 flag="--output")] = Path("results")
    apply_chat_template: Annotated[StrictBool, Option("prompt as a chat; few-shot as turns", PER_MODEL)] = False
    system_prompt: Annotated[Optional[StrictStr], Option("system message of every prompt", PER_MODEL)] = None
    formulation: Annotated[FormulationChoice, Option(
        "multiple choice by loglikelihood or by a generated letter (auto: by capability)", PER_MODEL_OR_TASK)] = "auto"
    data_source: Annotated[DataSourceChoice, Option("where the items come from (auto: offline package, "
                                                    "else the Hub)", RUN_WIDE)] = "auto"
    data_dir: Annotated[Optional[Path], Option("local copies: DIR/<task>/<split>.jsonl", RUN_WIDE)] = None
    include_paths: Annotated[list[Path], Option("a directory of your own task files", NOT_IN_CONFIG,
                                                flag="--include-path")] = []
    device: Annotated[StrictStr, Option("device of a local model: auto, cpu, cuda, cuda:1, mps", PER_MODEL)] = "auto"
    dtype: Annotated[StrictStr, Option("weights dtype of a local model: auto, float32, bfloat16, ...",
                                       PER_MODEL)] = "auto"
    concurrency: Annotated[PositiveInt, Option("parallel requests to remote models", PER_MODEL)] = 8
    cache: Annotated[StrictBool | CachePath, Option("do not read or write the response cache", RUN_WIDE,
                                                    flag="--no-cache")] = True
    allow_code_execution: Annotated[StrictBool, Option("run generated code (sandboxed) for HumanEval", PER_TASK)] = False
    samples_per_problem: Annotated[Optional[PositiveInt], Option("samples per problem, for pass@k", PER_TASK)] = None
    temperature: Annotated[Optional[NonNegativeFloat], Option("sampling temperature (default: the task's)",
                                                              PER_TASK)] = None
    max_new_tokens: Annotated[Optional[PositiveInt], Option("cap on generated tokens (default: the task's)",
                                                            PER_TASK)] = None
    top_p: Annotated[Optional[Probability], Option("nucleus sampling mass (default: the task's)", PER_TASK)] = None
    top_k: Annotated[Optional[NonNegativeInt], Option("sample from the k likeliest tokens; 0: all (default: "
                                                      "the task's)", PER_TASK)] = None
    stop: Annotated[Optional[list[StrictStr]], Option("stop sequence, replacing the task's (repeat the flag "
                                                      "for more)", PER_TASK)] = None
    max_length: Annotated[Optional[PositiveInt], Option("context window in tokens (default: the model's)",
                                                        PER_MODEL)] = None
    label: Annotated[Optional[NonEmptyStr], Option("display name for the leaderboard", MODEL_ENTRY_ONLY)] = None
    # Where requests are answered (docs/cluster.md); none of these can change a score.
    executor: Annotated[ExecutorChoice, Option("answer requests here (local) or on a Ray cluster (ray)", RUN_WIDE)] = "local"
    ray_address: Annotated[Optional[NonEmptyStr], Option(
        "the Ray cluster for --executor ray: HOST:PORT of its head (default: $RAY_ADDRESS, else Ray starts here)",
        RUN_WIDE)] = None
    replicas: Annotated[PositiveInt, Option("copies of the model serving the run (--executor ray)", PER_MODEL)] = 1
    shard_size: Annotated[PositiveInt, Option("requests handed to a replica at a time (--executor ray)", PER_MODEL)] = 16
    ray_num_cpus: Annotated[Optional[NonNegativeFloat], Option(
        "CPUs a replica asks Ray for (default: 1 for a local model, 0 for a remote API)", PER_MODEL)] = None
    ray_num_gpus: Annotated[Optional[NonNegativeFloat], Option(
        "GPUs a replica asks Ray for (default: 1 with --device cuda..., else 0)", PER_MODEL)] = None
    ray_memory_gb: Annotated[Optional[NonNegativeFloat], Option("memory (GiB) a replica asks Ray for", PER_MODEL)] = None

    @classmethod
    def parse(cls, values: Mapping[str, Any], where: str = "evaluate()") -> RunOptions:
        """Validate keywords from Python (or a merged config cell); a bad one is a one-line UserError."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise UserError(error_line(exc, cls, where, dialect="python", noun="option")) from None

    def task_options(self) -> TaskOptions:
        """The task side of the run (what is asked and how it is scored: the task fingerprint)."""
        from evalboard.taskdef.prepared import TaskOptions
        from evalboard.taskdef.prompting import PromptStyle

        style = PromptStyle(self.apply_chat_template, self.system_prompt)
        return TaskOptions(style=style, **{f.name: getattr(self, f.name) for f in fields(TaskOptions)
                                           if f.name != "style"})

    def adapter_settings(self) -> AdapterSettings:
        """The model side of the run: the knobs every adapter may use."""
        from evalboard.models.adapters.base import AdapterSettings

        return AdapterSettings(**{f.name: getattr(self, f.name) for f in fields(AdapterSettings)})

    def cache_path(self) -> Path | None:
        from evalboard.paths import response_cache_path

        if self.cache is True:
            return response_cache_path()
        return None if self.cache is False else Path(self.cache)

    def run_config(self, model: str, tasks: Sequence[str], *, progress: bool = False) -> RunConfig:
        from evalboard.engine.evaluator import RunConfig

        return RunConfig(
            model=model, tasks=list(tasks), options=self.task_options(), adapter_settings=self.adapter_settings(),
            output_dir=self.output_dir, include_paths=list(self.include_paths), cache_path=self.cache_path(),
            allow_code_execution=self.allow_code_execution, progress=progress, label=self.label,
            executor=self.executor_settings(),
        )

    def executor_settings(self) -> ExecutorSettings:
        """Where the run's requests are answered, and what each model replica asks for there."""
        placement = Placement(replicas=self.replicas, shard_size=self.shard_size, num_cpus=self.ray_num_cpus,
                              num_gpus=self.ray_num_gpus, memory_gb=self.ray_memory_gb)
        return ExecutorSettings(kind=self.executor, ray_address=self.ray_address, placement=placement)


def option_info(name: str) -> Option:
    """The Option metadata of one RunOptions field."""
    return next(m for m in RunOptions.model_fields[name].metadata if isinstance(m, Option))


def config_keys(section: str) -> list[str]:
    """The RunOptions fields a nightly config's `defaults:`, `models:` or `tasks:` entries may set."""
    assert section in CONFIG_SECTIONS, section
    return [name for name in RunOptions.model_fields if section in option_info(name).where]


# ---------------------------------------------------------------------------------------------
# One-line errors that say what is allowed (read off the JSON schema, so they follow the types)
# ---------------------------------------------------------------------------------------------

Dialect = Literal["python", "yaml", "cli"]
_SPELLING = {"python": ("None", "True or False"), "yaml": ("null", "true or false"), "cli": (None, "a flag")}


@cache
def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def describe(node: dict[str, Any], defs: dict[str, Any], dialect: Dialect) -> str:
    """What a JSON-schema node allows, in words ("a positive whole number or null")."""
    node = _deref(node, defs)
    null, boolean = _SPELLING[dialect]
    if "allowed" in node:  # a hand-written description (json_schema_extra)
        return node["allowed"]
    if "anyOf" in node:
        return " or ".join(describe(n, defs, dialect) for n in node["anyOf"] if null or n.get("type") != "null")
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"])
    if "const" in node:  # a Literal with one value (`--batch-size auto`)
        return str(node["const"])
    kind = node.get("type")
    if kind == "null":
        return str(null)
    if kind == "boolean":
        return boolean
    if kind in ("integer", "number"):
        noun = "whole number" if kind == "integer" else "number"
        if node.get("exclusiveMinimum") == 0:
            return f"a positive {noun}"
        return f"a {noun} >= {node['minimum']}" if "minimum" in node else f"a {noun}"
    if kind == "string":
        if node.get("format") == "path":
            return "a path"
        return "a non-empty string" if node.get("minLength") == 1 else "a string"
    if kind == "array":
        return f"a list (each {describe(node.get('items', {}), defs, dialect)})"
    return "a mapping"


def _properties(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _deref(node, defs)
    found = dict(node.get("properties", {}))
    for branch in node.get("anyOf", []):
        found.update(_properties(branch, defs))
    return found


def _walk(schema: dict[str, Any], loc: Sequence[str | int]) -> tuple[list[str | int], dict[str, Any]]:
    """The part of `loc` that names schema fields and list items (union branch tags are dropped),
    and the schema node it reaches."""
    defs = schema.get("$defs", {})
    node, consumed = schema, []
    for part in loc:
        here = _deref(node, defs)
        if isinstance(part, int) and "items" in here:
            node = here["items"]
        elif isinstance(part, str) and part in _properties(here, defs):
            node = _properties(here, defs)[part]
        else:
            break
        consumed.append(part)
    return consumed, node


def dotted(loc: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _shown(value: Any, dialect: Dialect) -> str:
    """The offending value as the user wrote it (YAML: `true`, `"false"`), cut short."""
    text = json.dumps(value, default=str) if dialect == "yaml" else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def error_line(exc: ValidationError, model: type[BaseModel], where: str, *, dialect: Dialect,
               noun: str = "key", path_text: Callable[[Sequence[str | int]], str] = dotted) -> str:
    """One line for a ValidationError of `model`: where, which field, and what it allows."""
    schema = json_schema(model)
    defs = schema.get("$defs", {})
    problems: dict[tuple, str] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            consumed, holder = _walk(schema, loc[:-1])
            allowed = ", ".join(sorted(_properties(holder, defs)))
            inside = f"{path_text(consumed)}: " if consumed else ""
            problems.setdefault(loc, f"{inside}unknown {noun} {loc[-1]}; allowed: {allowed}")
            continue
        consumed, node = _walk(schema, loc)
        path = path_text(consumed)
        if error["type"] == "evalboard":  # our own check, with its own words
            text = f"{path}: {error['msg']}" if path else error["msg"]
        elif error["type"] == "missing":
            text = f"{path} is required: {describe(node, defs, dialect)}"
        else:
            text = f"{path} must be {describe(node, defs, dialect)}, not {_shown(error['input'], dialect)}"
        problems.setdefault(tuple(consumed), text)
    first, *rest = problems.values()
    more = f" (and {len(rest)} more problem{'s' if len(rest) > 1 else ''})" if rest else ""
    return f"{where}: {first}{more}"


def field_schema(name: str) -> dict[str, Any]:
    return json_schema(RunOptions)["properties"][name]


def check_value(name: str, value: Any) -> Any:
    """One option's value, validated as RunOptions validates it; ValueError says what is allowed."""
    try:
        return getattr(RunOptions.model_validate({name: value}), name)
    except ValidationError:
        raise ValueError(f"must be {describe(field_schema(name), {}, 'cli')}, not {value!r}") from None
