"""A task made ready for one run: its documents, few-shot pool, formulation and fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from evalboard.models.adapters.base import Capabilities
from evalboard.taskdef.data import DataSourceChoice, load_split
from evalboard.errors import UserError
from evalboard.taskdef.fewshot import select_fewshot
from evalboard.fingerprint import code_hash, stable_hash
from evalboard.taskdef.formulations import Formulation, FreeGeneration, LetterChoice, LoglikelihoodChoice
from evalboard.taskdef.prompting import PromptStyle
from evalboard.requests import GenerationParams, Request, request_key
from evalboard.taskdef.registry import hook, hook_file
from evalboard.taskdef.spec import TaskSpec

Doc = dict[str, Any]
FormulationChoice = Literal["auto", "loglikelihood", "generative"]

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
    limit: int | None = None
    data_source: DataSourceChoice = "auto"
    data_dir: Path | None = None
    style: PromptStyle = PromptStyle()
    formulation: FormulationChoice = "auto"
    samples_per_problem: int | None = None
    temperature: float | None = None
    max_new_tokens: int | None = None


@dataclass
class PreparedTask:
    spec: TaskSpec
    options: TaskOptions
    docs: list[Doc]
    fewshot_pool: list[Doc]
    all_items_hash: str
    origin: str
    formulation: Formulation | None = None
    fewshot_by_doc: dict[str, list[Doc]] = field(default_factory=dict)
    probe_docs: list[Doc] = field(default_factory=list)  # the split's first PROBE_DOCS documents

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
            self.fewshot_by_doc[key] = select_fewshot(
                doc, self.fewshot_pool, self.num_fewshot, self.spec.fewshot, self.options.seed,
                same_split=self.spec.data.fewshot_split == self.spec.data.split,
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
                "generation": getattr(self.formulation, "params", None),
                "samples": getattr(self.formulation, "samples", 1),
                "requests": stable_hash([[request_key(r) for r in self.requests(doc)] for doc in self.probe_docs]),
                "code": self.scoring_code_hash(),
            }
        )


def _docs(spec: TaskSpec, split: str, options: TaskOptions) -> tuple[list[Doc], str]:
    loaded = load_split(spec.name, spec.data, split, options.data_source, options.data_dir)
    try:
        docs = hook(spec, "to_docs")(loaded.rows, loaded.source_format)
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"task {spec.name}: rows from {loaded.origin} don't fit the task ({exc!r})") from exc
    return docs, loaded.origin


def prepare_task(spec: TaskSpec, options: TaskOptions) -> PreparedTask:
    """Load the items (and few-shot pool) of one task; fails early with a one-line message."""
    if options.limit is not None and options.limit <= 0:
        raise UserError(f"--limit must be a positive number of items, not {options.limit}")
    docs, origin = _docs(spec, spec.data.split, options)
    num_fewshot = spec.num_fewshot if options.num_fewshot is None else options.num_fewshot
    if num_fewshot < 0:
        raise UserError(f"--num-fewshot must be 0 or more, not {num_fewshot}")
    pool: list[Doc] = []
    if num_fewshot > 0:
        if spec.fewshot.sampler == "fixed":
            pool = hook(spec, spec.fewshot.fixed_hook or "fewshot_examples")()
        elif spec.data.fewshot_split:
            try:
                pool, _ = _docs(spec, spec.data.fewshot_split, options)
            except UserError as exc:
                raise UserError(
                    f"task {spec.name} takes its few-shot examples from the {spec.data.fewshot_split!r} "
                    f"split, which is not available here ({exc}); use --num-fewshot 0"
                    + (f", or the task {spec.name}_cot with fixed exemplars" if spec.name == "gsm8k" else "")
                ) from exc
        else:
            raise UserError(
                f"task {spec.name} has no few-shot source available (lm-eval draws its examples "
                f"from a split no offline package ships); use --num-fewshot 0"
            )
    all_hash, probe = stable_hash(docs), docs[:PROBE_DOCS]
    if options.limit is not None:
        docs = docs[: options.limit]
    return PreparedTask(spec, options, docs, pool, all_hash, origin, probe_docs=probe)


def choose_formulation(task: PreparedTask, capabilities: Capabilities, model_name: str) -> None:
    """Pick how the task is asked of this model, or fail before any work starts."""
    spec, options = task.spec, task.options
    if spec.type == "multiple_choice":
        wanted = options.formulation
        if wanted == "auto":
            wanted = "loglikelihood" if capabilities.loglikelihood else "generative"
        if wanted == "loglikelihood" and not capabilities.loglikelihood:
            raise UserError(
                f"task {spec.name} in the loglikelihood formulation needs logprobs, which {model_name} "
                f"does not give; use --formulation generative (or auto)"
            )
        cls = LoglikelihoodChoice if wanted == "loglikelihood" else LetterChoice
        task.formulation = cls(spec, task.style)
        return
    if not capabilities.generate:
        raise UserError(f"task {spec.name} needs text generation, which {model_name} cannot do")
    gen = spec.generation
    params = GenerationParams(
        max_new_tokens=options.max_new_tokens or gen.max_new_tokens,
        temperature=gen.temperature if options.temperature is None else options.temperature,
        top_p=gen.top_p,
        stop=gen.stop,
        seed=options.seed,
    )
    samples = options.samples_per_problem or spec.samples_default
    if samples > 1 and params.greedy:
        raise UserError(
            f"--samples-per-problem {samples} with greedy decoding repeats one answer; "
            f"add --temperature (e.g. 0.8)"
        )
    scorer = hook(spec, spec.scorer) if spec.scorer else None
    batch_scorer = hook(spec, spec.batch_scorer) if spec.batch_scorer else None
    if scorer is None and batch_scorer is None:
        raise UserError(f"task {spec.name} is a generate task but names no scorer or batch_scorer hook")
    task.formulation = FreeGeneration(spec, task.style, params=params, samples=samples, scorer=scorer,
                                      batch_scorer=batch_scorer)

