"""Generate-until tasks (lm-eval's `output_type: generate_until`): GSM8K, HumanEval, IFEval.

n samples per document. Scored either by built-in answer filters and metrics declared in the
task file (each metric under each filter pipeline, keyed `metric,filter` as lm-eval reports them;
the gold is the rendered `prompt.target`), or by the task's `scorer` hook (one document's texts)
or `batch_scorer` hook (all documents at once, e.g. HumanEval's parallel sandbox).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evalboard.errors import UserError
from evalboard.requests import GenerateRequest, GenerationParams, Prompt, Request, Response
from evalboard.taskdef.prompting import render
from evalboard.taskdef.scorers.filters import Step, build_pipeline
from evalboard.taskdef.scorers.text_metrics import Metric, build_metric
from evalboard.taskdef.shapes.base import Doc, Scores, Shape, ShapeContext, register_alias, register_shape
from evalboard.taskdef.spec import TaskSpec


def _identity(responses: list[str]) -> list[str]:
    return responses


@register_shape
class FreeGeneration(Shape):
    task_type = "generate_until"
    formulation = "generate"
    needs = "generate"
    takes_generation_options = True

    def __init__(self, context: ShapeContext) -> None:
        super().__init__(context)
        spec, gen = self.spec, self.spec.generation
        self.params = GenerationParams(
            max_new_tokens=context.max_new_tokens or gen.max_new_tokens,
            temperature=gen.temperature if context.temperature is None else context.temperature,
            top_p=gen.top_p if context.top_p is None else context.top_p,
            top_k=gen.top_k if context.top_k is None else context.top_k,
            stop=gen.stop if context.stop is None else context.stop,
            seed=context.seed,
        )
        self.samples = context.samples_per_problem or 1
        if self.samples > 1 and self.params.greedy:
            raise UserError(f"--samples-per-problem {self.samples} with greedy decoding repeats one answer; "
                            f"add --temperature (e.g. 0.8)")
        self.scorer = context.hook_function(spec.scorer) if spec.scorer else None
        self.batch_scorer = context.hook_function(spec.batch_scorer) if spec.batch_scorer else None
        self.pipelines: dict[str, Step] = {
            p.name: build_pipeline(spec.name, p.name, [s.model_dump() for s in p.steps]) for p in spec.filters
        } or ({"none": _identity} if spec.metrics else {})
        self.metrics: dict[str, Metric] = {
            m.metric: build_metric(spec.name, m.metric, m.model_dump(exclude={"metric"})) for m in spec.metrics
        }
        if self.pipelines and not self.metrics:
            raise UserError(f"task {spec.name} declares filters but no `metrics:` to score their answers")
        if not (self.metrics or self.scorer or self.batch_scorer):
            raise UserError(f"task {spec.name} is a generate task with no `metrics:` and no scorer or "
                            f"batch_scorer hook; add e.g. `metrics: [{{metric: exact_match}}]`")

    @classmethod
    def metric_names(cls, spec: TaskSpec) -> frozenset[str] | None:
        if spec.scorer or spec.batch_scorer:
            return None
        pipelines = [p.name for p in spec.filters] or ["none"]
        return frozenset(f"{m.metric},{p}" for m in spec.metrics for p in pipelines)

    def target(self, doc: Doc) -> Any:
        return render(self.spec.prompt.target, doc, self.spec.name) if self.spec.prompt.target else None

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        return self._assemble(doc, shots, self.spec.prompt.text, lambda d: str(self.target(d)))

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        prompt = self.prompt(doc, shots)
        params = self.params or GenerationParams()
        return [GenerateRequest(prompt, params, sample=i) for i in range(self.samples)]

    def filtered(self, responses: list[str]) -> dict[str, list[str]]:
        """Each pipeline's answers (what the per-sample log shows next to the raw text)."""
        return {name: pipeline(list(responses)) for name, pipeline in self.pipelines.items()}

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        texts = [r.text or "" for r in responses]
        if self.scorer is not None:
            return dict(self.scorer(doc, texts))
        gold = str(self.target(doc))
        scores: Scores = {}
        for filter_name, answers in self.filtered(texts).items():
            for metric_name, metric in self.metrics.items():
                # lm-eval scores the first answer left after the pipeline (take_first)
                scores[f"{metric_name},{filter_name}"] = metric(answers[0] if answers else "", gold)
        return scores

    def score_all(self, docs: Sequence[Doc], responses: Sequence[Sequence[Response]]) -> list[Scores]:
        if self.batch_scorer is None:
            return super().score_all(docs, responses)
        batch: Callable[..., list[Scores]] = self.batch_scorer
        return batch(docs, [[r.text or "" for r in answers] for answers in responses])


register_alias("generate", "generate_until")
