"""Rolling-loglikelihood tasks (lm-eval's `output_type: loglikelihood_rolling`, e.g. `wikitext`):
the loglikelihood of a whole document, windowed by the adapter, reported as perplexities.

One request per document: the text `prompt.rolling_text` names (an expression over the document,
default its `text`). Its scores are lm-eval's (`ConfigurableTask.process_results`): (loglikelihood,
words) for word_perplexity and (loglikelihood, UTF-8 bytes) for byte_perplexity and bits_per_byte,
words counted as `len(re.split(r"\\s+", text))`. The task's figures are ratios of sums over all
documents (lm-eval's `weighted_perplexity` and `bits_per_byte` aggregations), not means of
per-document ratios, and have no standard error (lm-eval reports N/A). A `scorer:` hook,
`scorer(doc, loglikelihood) -> scores`, replaces the counting (lm-eval's wikitext counts the words
of the page before detokenisation).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from evalboard.errors import UserError
from evalboard.requests import Prompt, Request, Response, RollingLoglikelihoodRequest
from evalboard.stats import MetricValue
from evalboard.taskdef.prompting import evaluate_expression
from evalboard.taskdef.shapes.base import Doc, Scores, Shape, ShapeContext, register_shape
from evalboard.taskdef.spec import TaskSpec


def count_words(text: str) -> int:
    """lm-eval's Task.count_words (so an empty text is one word, as there)."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _sums(pairs: list[Any]) -> tuple[float, float]:
    return sum(float(ll) for ll, _ in pairs), sum(float(n) for _, n in pairs)


def weighted_perplexity(pairs: list[Any]) -> MetricValue:
    """exp(-sum of loglikelihoods / sum of units): lm-eval's `weighted_perplexity`."""
    loglikelihood, units = _sums(pairs)
    return MetricValue(math.exp(-loglikelihood / units) if units else math.nan, None, len(pairs))


def bits_per_byte(pairs: list[Any]) -> MetricValue:
    """-sum of loglikelihoods / (sum of bytes * ln 2): lm-eval's `bits_per_byte`."""
    loglikelihood, units = _sums(pairs)
    return MetricValue(-loglikelihood / units / math.log(2) if units else math.nan, None, len(pairs))


@register_shape
class RollingLoglikelihood(Shape):
    task_type = "loglikelihood_rolling"
    formulation = "loglikelihood_rolling"
    needs = "loglikelihood"
    aggregations = {
        "word_perplexity": weighted_perplexity,
        "byte_perplexity": weighted_perplexity,
        "bits_per_byte": bits_per_byte,
    }

    def __init__(self, context: ShapeContext) -> None:
        super().__init__(context)
        self.scorer = context.hook_function(self.spec.scorer) if self.spec.scorer else None

    @classmethod
    def metric_names(cls, spec: TaskSpec) -> frozenset[str] | None:
        return None if spec.scorer else frozenset(cls.aggregations)

    def text(self, doc: Doc) -> str:
        text = evaluate_expression(self.spec.prompt.rolling_text, doc, self.spec.name)
        if not isinstance(text, str):
            raise UserError(f"task {self.spec.name}: rolling_text {self.spec.prompt.rolling_text!r} gives "
                            f"{type(text).__name__}, not text, for doc {doc.get('id')}")
        return text

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt | None:
        return None  # no prompt: the text itself is scored

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        return [RollingLoglikelihoodRequest(self.text(doc))]

    def target(self, doc: Doc) -> Any:
        return None

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        loglikelihood = float(responses[0].logprob or 0.0)
        if self.scorer is not None:
            return dict(self.scorer(doc, loglikelihood))
        text = self.text(doc)
        words, size = count_words(text), count_bytes(text)
        return {"word_perplexity": (loglikelihood, words), "byte_perplexity": (loglikelihood, size),
                "bits_per_byte": (loglikelihood, size)}
