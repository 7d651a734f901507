"""The shape protocol and its registry (task type -> formulations, preferred first)."""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from evalboard.errors import UserError
from evalboard.requests import GenerationParams, Prompt, Request, Response
from evalboard.taskdef.prompting import PromptStyle, Turn, assemble, render
from evalboard.taskdef.spec import TaskSpec

if TYPE_CHECKING:
    from evalboard.stats import MetricValue

Doc = dict[str, Any]
Scores = dict[str, Any]  # metric -> float, or list of floats (pooled at aggregation)
Capability = Literal["loglikelihood", "generate"]
# A metric whose per-document values are not averaged (perplexities: sums of logprobs over sums of
# words) names its own aggregation: the per-document values in, the task's figure out.
Aggregation = Callable[[list[Any]], "MetricValue"]


@dataclass(frozen=True)
class ShapeContext:
    """What a shape is built from: the task file, the run's prompt style and sampling settings,
    and the task's hook lookup."""

    spec: TaskSpec
    style: PromptStyle
    seed: int = 1234
    temperature: float | None = None
    max_new_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] | None = None
    samples_per_problem: int | None = None
    hook: Callable[[str], Callable[..., Any]] | None = None

    def hook_function(self, name: str) -> Callable[..., Any]:
        if self.hook is None:
            raise UserError(f"task {self.spec.name} names the hook {name!r} but has no hooks module")
        return self.hook(name)


class Shape(ABC):
    """One task type in one formulation: documents -> requests, responses -> per-document scores."""

    task_type: ClassVar[str]
    formulation: ClassVar[str]  # recorded with every result: which way the number was produced
    needs: ClassVar[Capability]  # what the model must be able to do
    aggregations: ClassVar[dict[str, Aggregation]] = {}
    params: GenerationParams | None = None  # generation settings, where the shape generates
    samples: int = 1  # requests per document
    takes_generation_options: ClassVar[bool] = False  # whether the run's temperature, top_p, ... apply

    def __init__(self, context: ShapeContext) -> None:
        self.context = context
        self.spec = context.spec
        self.style = context.style

    @property
    def name(self) -> str:  # the formulation's name (what results record)
        return self.formulation

    @abstractmethod
    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt | None: ...

    @abstractmethod
    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]: ...

    @abstractmethod
    def target(self, doc: Doc) -> Any: ...

    @abstractmethod
    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores: ...

    def score_all(self, docs: Sequence[Doc], responses: Sequence[Sequence[Response]]) -> list[Scores]:
        return [self.score(doc, answers) for doc, answers in zip(docs, responses)]

    def picks(self, doc: Doc, responses: Sequence[Response]) -> dict[str, int] | None:
        """Multiple choice scored by loglikelihood: the option index each accuracy metric chose
        (recorded with the sample, so views of it need not redo the scoring). None elsewhere."""
        return None

    def primary_metric(self) -> str:
        return self.spec.primary_metric

    @classmethod
    def metric_names(cls, spec: TaskSpec) -> frozenset[str] | None:
        """The metrics this formulation reports for the task, known from the task file alone
        (None: a scorer hook decides them). `<metric>_macro` averages come on top with a group_field."""
        return None

    def check_primary_metric(self) -> None:
        """A primary metric the task does not report would leave an empty leaderboard column: a
        one-line error naming the file and the metrics there are (None known: a hook decides)."""
        known = self.metric_names(self.spec)
        if known is None:
            return
        metrics = sorted(known)
        if self.spec.group_field:
            metrics += [f"{metric}_macro" for metric in metrics]
        primary = self.primary_metric()
        if primary not in metrics:
            near = difflib.get_close_matches(primary, metrics, n=1, cutoff=0.6)
            hint = f"did you mean `{near[0]}`? " if near else ""
            raise UserError(f"task file {self.spec.source_file}: `primary_metric: {primary}` is not a metric the "
                            f"{self.formulation} formulation reports; {hint}it reports: {', '.join(metrics)}")

    def _assemble(self, doc: Doc, shots: Sequence[Doc], question_template: str,
                  answer_of: Callable[[Doc], str]) -> Prompt:
        name = self.spec.name
        description = render(self.spec.prompt.description, doc, name) if self.spec.prompt.description else ""
        turns = [Turn(render(question_template, shot, name), answer_of(shot)) for shot in shots]
        return assemble(
            description, turns, render(question_template, doc, name), self.style,
            self.spec.prompt.target_delimiter, self.spec.prompt.fewshot_delimiter,
        )


_SHAPES: dict[str, list[type[Shape]]] = {}
_ALIASES: dict[str, str] = {}


def register_shape(cls: type[Shape]) -> type[Shape]:
    """Register a shape class under its task type (the first registered formulation of a type is
    the one `auto` prefers when the model can do it)."""
    _SHAPES.setdefault(cls.task_type, []).append(cls)
    return cls


def register_alias(alias: str, task_type: str) -> None:
    """An older or lm-eval spelling of a task type (e.g. `generate` for `generate_until`)."""
    _ALIASES[alias] = task_type


def shape_names() -> list[str]:
    return sorted([*_SHAPES, *_ALIASES])


def shapes_for(task_type: str) -> list[type[Shape]]:
    return list(_SHAPES[_ALIASES.get(task_type, task_type)])
