"""A task made ready for one run: its documents, few-shot pool, formulation and fingerprint."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalboard.errors import UserError
from evalboard.fingerprint import code_hash, stable_hash
from evalboard.requests import Capabilities, FormulationChoice, Request, request_key
from evalboard.taskdef.data import DataSourceChoice, load_split
from evalboard.taskdef.fewshot import SequentialDraws, select_fewshot
from evalboard.taskdef.prompting import PromptStyle
from evalboard.taskdef.registry import has_hook, hook, hook_file
from evalboard.taskdef.shapes import Shape, ShapeContext, shapes_for
from evalboard.taskdef.spec import TaskSpec

Doc = dict[str, Any]

# The split's first documents, whose requests the fingerprint hashes whatever --limit is: runs of
# different lengths stay comparable item by item, and rendering them all (MMLU: 56k prompts, 20 s)
# would cost every run. The code hash catches prompt-assembly changes on the documents after them.
PROBE_DOCS = 32
# Code whose whole effect the fingerprint already hashes as data (the parsed definition, the items).
_HASHED_AS_DATA = ("evalboard.taskdef.spec", "evalboard.taskdef.data")


@dataclass(frozen=True)
class TaskOptions:
    """Run-level settings that shape every task's prompts and requests."""

    num_fewshot: int | None = None  # None: the task's default
    seed: int = 1234
    limit: int | float | None = None  # N items, or a fraction (< 1) of the items; per group with a group_field
    data_source: DataSourceChoice = "auto"
    data_dir: Path | None = None
    style: PromptStyle = PromptStyle()
    formulation: FormulationChoice = "auto"
    samples_per_problem: int | None = None
    temperature: float | None = None
    max_new_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | None = None  # replaces the task's stop sequences


@dataclass
class PreparedTask:
    spec: TaskSpec
    options: TaskOptions
    docs: list[Doc]
    fewshot_pool: list[Doc]
    all_items_hash: str
    origin: str
    formulation: Shape | None = None  # the task's shape in the formulation chosen for the model
    fewshot_by_doc: dict[str, list[Doc]] = field(default_factory=dict)
    probe_docs: list[Doc] = field(default_factory=list)  # the split's first PROBE_DOCS documents
    positions: dict[str, int] = field(default_factory=dict)  # id -> place in the whole split (lm_eval_random)
    draws: SequentialDraws | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def style(self) -> PromptStyle:
        """The run's prompt style, except that a chat variant of a task is always a chat."""
        if self.spec.chat and not self.options.style.apply_chat_template:
            return PromptStyle(True, self.options.style.system_prompt)
        return self.options.style

    @property
    def num_fewshot(self) -> int:
        return self.spec.num_fewshot if self.options.num_fewshot is None else self.options.num_fewshot

    def shots(self, doc: Doc) -> list[Doc]:
        key = str(doc["id"])
        if key not in self.fewshot_by_doc:
            if self.spec.fewshot.sampler == "lm_eval_random" and self.draws is None:
                self.draws = SequentialDraws(self.options.seed)
            self.fewshot_by_doc[key] = select_fewshot(
                doc, self.fewshot_pool, self.num_fewshot, self.spec.fewshot, self.options.seed,
                same_split=self.spec.data.fewshot_split == self.spec.data.split,
                draws=self.draws, position=self.positions.get(key),
            )
        return self.fewshot_by_doc[key]

    def requests(self, doc: Doc) -> list[Request]:
        assert self.formulation is not None
        return self.formulation.requests(doc, self.shots(doc))

    def scoring_code_hash(self) -> str:
        """The source of the formulation, few-shot selection and hook modules and of the evalboard
        modules they import (prompt assembly, scorers, filters, the sandbox), so a fix to any of
        them changes the fingerprint while an edit elsewhere in the package does not."""
        assert self.formulation is not None
        hooks = hook_file(self.spec)
        return code_hash([type(self.formulation).__module__, "evalboard.taskdef.fewshot"],
                         [hooks] if hooks is not None and hooks.is_file() else [], _HASHED_AS_DATA)

    def fingerprint(self) -> str:
        """Same fingerprint, same questions asked and scored the same way: the resolved definition,
        every item of the split, the few-shot pool, the settings that change prompts, the requests
        themselves (of the probe documents) and the code that builds and scores them."""
        assert self.formulation is not None
        return stable_hash(
            {
                "definition": self.spec.definition_hash(),
                "items": self.all_items_hash,
                "fewshot_pool": stable_hash(self.fewshot_pool),
                "num_fewshot": self.num_fewshot,
                "seed": self.options.seed,
                "formulation": self.formulation.name,
                "style": [self.style.apply_chat_template, self.style.system_prompt],
                "generation": self.formulation.params,
                "samples": self.formulation.samples,
                "requests": stable_hash([[request_key(r) for r in self.requests(doc)] for doc in self.probe_docs]),
                "code": self.scoring_code_hash(),
            }
        )


def load_docs(spec: TaskSpec, split: str, options: TaskOptions) -> tuple[list[Doc], str]:
    """The split's documents: the hook's `to_docs(rows, source_format)` where the task has one,
    else the rows as they are (a row's `id`, or its position, identifies it)."""
    try:
        loaded = load_split(spec.name, spec.data, split, options.data_source, options.data_dir,
                            spec.source_file.parent, spec.subtask_of)
    except UserError as exc:
        if not spec.data.data_file(split):
            raise
        raise UserError(f"task file {spec.source_file}: {exc}") from None
    to_docs = hook(spec, "to_docs") if spec.hooks and has_hook(spec, "to_docs") else None
    try:
        if to_docs is None:
            return [{**row, "id": row.get("id", str(i))} for i, row in enumerate(loaded.rows)], loaded.origin
        docs = to_docs(loaded.rows, loaded.source_format)
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"task {spec.name}: rows from {loaded.origin} don't fit the task ({exc!r})") from exc
    return docs, loaded.origin


def prepare_task(spec: TaskSpec, options: TaskOptions) -> PreparedTask:
    """Load the items (and few-shot pool) of one task; fails early with a one-line message."""
    if options.limit is not None and (options.limit <= 0 or (isinstance(options.limit, float) and options.limit >= 1)):
        raise UserError(f"--limit must be a positive number of items or a fraction below 1, not {options.limit}")
    docs, origin = load_docs(spec, spec.data.split, options)
    num_fewshot = spec.num_fewshot if options.num_fewshot is None else options.num_fewshot
    if num_fewshot < 0:
        raise UserError(f"--num-fewshot must be 0 or more, not {num_fewshot}")
    pool: list[Doc] = []
    if num_fewshot > 0:
        if spec.fewshot.sampler == "fixed" and spec.fewshot.samples:
            pool = [{"id": f"fewshot/{i}", **sample} for i, sample in enumerate(spec.fewshot.samples)]
        elif spec.fewshot.sampler == "fixed":
            pool = hook(spec, spec.fewshot.fixed_hook or "fewshot_examples")()
        elif spec.data.fewshot_split:
            try:
                pool, _ = load_docs(spec, spec.data.fewshot_split, options)
            except UserError as exc:
                raise UserError(
                    f"task {spec.name} takes its few-shot examples from the {spec.data.fewshot_split!r} "
                    f"split, which is not available here ({exc}); use --num-fewshot 0, or a local copy "
                    f"of that split with --data-dir"
                ) from exc
        elif spec.data.data_files:
            raise UserError(
                f"task {spec.name} has no few-shot source: its task file {spec.source_file} sets no "
                f"`data.fewshot_split` (give one, with its file under `data_files:`), or use --num-fewshot 0"
            )
        else:
            raise UserError(
                f"task {spec.name} has no few-shot source available (lm-eval draws its examples "
                f"from a split no offline package ships); use --num-fewshot 0"
            )
    available = len(pool) - (spec.data.fewshot_split == spec.data.split)  # a doc is never its own example
    if num_fewshot > max(available, 0) and pool:
        # lm-eval refuses too (random.sample: "Sample larger than population"); recording a count
        # that was never used would make the run look like something it is not.
        raise UserError(
            f"--num-fewshot {num_fewshot} asks for more examples than task {spec.name} has: its few-shot "
            f"pool holds {available}; use --num-fewshot {available} or less"
        )
    all_hash, probe = stable_hash(docs), docs[:PROBE_DOCS]
    positions = {str(d["id"]): i for i, d in enumerate(docs)} if spec.fewshot.sampler == "lm_eval_random" else {}
    if options.limit is not None:
        docs = limit_docs(docs, options.limit, spec.group_field if spec.lm_eval_group else None)
    return PreparedTask(spec, options, docs, pool, all_hash, origin, probe_docs=probe, positions=positions)


def limit_docs(docs: list[Doc], limit: int | float, group_field: str | None = None) -> list[Doc]:
    """The first `limit` documents, or the first ceil(limit * n) for a fraction (lm-eval's rounding);
    with a group field, that many of each group (MMLU: per subject, as lm-eval limits each subtask),
    in the split's order."""
    def take(count: int) -> int:
        return math.ceil(count * limit) if isinstance(limit, float) else int(limit)

    if group_field is None:
        return docs[: take(len(docs))]
    sizes = Counter(str(doc.get(group_field)) for doc in docs)
    kept: Counter[str] = Counter()
    chosen = []
    for doc in docs:
        group = str(doc.get(group_field))
        if kept[group] < take(sizes[group]):
            kept[group] += 1
            chosen.append(doc)
    return chosen


def choose_formulation(task: PreparedTask, capabilities: Capabilities, model_name: str) -> None:
    """Pick how the task is asked of this model (its shape's formulations, restricted by the task
    file's `formulations:`), or fail before any work starts."""
    spec, wanted = task.spec, task.options.formulation
    candidates = shapes_for(spec.type)
    if spec.formulations is not None:
        unknown = sorted(set(spec.formulations) - {c.formulation for c in candidates})
        if unknown:
            raise UserError(f"task {spec.name}: formulations {', '.join(unknown)} do not exist for type "
                            f"{spec.type}; it has {', '.join(c.formulation for c in candidates)}")
        candidates = [c for c in candidates if c.formulation in spec.formulations]
    names = ", ".join(c.formulation for c in candidates)
    if wanted != "auto" and len(shapes_for(spec.type)) > 1:
        chosen = [c for c in candidates if c.formulation == wanted]
        if not chosen:
            raise UserError(f"task {spec.name} does not support --formulation {wanted}; it supports {names}")
        if not _can(capabilities, chosen[0].needs):
            possible = [c.formulation for c in candidates if _can(capabilities, c.needs)]
            advice = f"use --formulation {possible[0]} (or auto)" if possible else f"it supports only {names}"
            raise UserError(f"task {spec.name} in the {wanted} formulation needs {_NEEDS[chosen[0].needs]}, "
                            f"which {model_name} does not give; {advice}")
    else:  # auto, or a shape with one formulation (a run-wide --formulation is about choice tasks)
        chosen = [c for c in candidates if _can(capabilities, c.needs)]
        if not chosen:
            raise UserError(f"task {spec.name} needs {_NEEDS[candidates[0].needs]}, which {model_name} "
                            f"cannot give (the task supports {names})")
    options = task.options
    task.formulation = chosen[0](ShapeContext(
        spec, task.style, seed=options.seed, temperature=options.temperature,
        max_new_tokens=options.max_new_tokens, samples_per_problem=options.samples_per_problem,
        top_p=options.top_p, top_k=options.top_k, stop=None if options.stop is None else tuple(options.stop),
        hook=lambda name: hook(spec, name),
    ))
    task.formulation.check_primary_metric()


GENERATION_OPTIONS = ("temperature", "top_p", "top_k", "stop", "max_new_tokens", "samples_per_problem")


def ignored_generation_options(task: PreparedTask) -> list[str]:
    """The generation options the run sets that this task's formulation never uses (a
    loglikelihood task, or a letter answer with its own fixed settings)."""
    assert task.formulation is not None
    if task.formulation.takes_generation_options:
        return []
    return [name for name in GENERATION_OPTIONS if getattr(task.options, name) is not None]


_NEEDS = {"loglikelihood": "logprobs", "generate": "text generation"}


def _can(capabilities: Capabilities, need: str) -> bool:
    return bool(capabilities.loglikelihood if need == "loglikelihood" else capabilities.generate)
