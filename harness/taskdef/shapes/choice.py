"""Multiple-choice shapes (lm-eval's `output_type: multiple_choice`).

- `multiple_choice`, formulation `loglikelihood`: one context, each choice scored as its
  continuation; acc = argmax loglikelihood, acc_norm = argmax of loglikelihood divided by the
  choice's length in characters (lm-eval's definitions).
- `multiple_choice`, formulation `generative`: the model sees the lettered choices and writes the
  letter (for chat APIs without logprobs).
- `multiple_inputs`: one continuation scored after each of several contexts (Winogrande's partial
  scoring: the option fills the blank in the context; lm-eval's `multiple_input`).

A `scorer:` hook on a loglikelihood shape receives the per-choice logprobs and greedy flags
(`ChoiceResult`) and returns the document's scores (TruthfulQA MC2's probability mass).
The gold answer (`prompt.answer`, default the document's `answer`) may be an index, a letter or
the choice's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from evalboard.errors import UserError
from evalboard.requests import GenerateRequest, GenerationParams, LoglikelihoodRequest, Prompt, Request, Response
from evalboard.taskdef.prompting import LETTERS, Turn, assemble, evaluate_expression, render
from evalboard.taskdef.shapes.base import Doc, Scores, Shape, ShapeContext, register_shape
from evalboard.taskdef.spec import TaskSpec


@dataclass(frozen=True)
class ChoiceResult:
    """What a choice scorer hook sees for one document."""

    logprobs: list[float]
    is_greedy: list[bool]
    choices: list[str]  # the scored options (continuations, or contexts for multiple inputs)
    gold: int


def choice_picks(result: ChoiceResult) -> dict[str, int]:
    """The option each accuracy metric picks: acc the highest loglikelihood, acc_norm the highest
    loglikelihood per character of the option itself (no target delimiter; lm-eval's definitions)."""
    logprobs = np.array(result.logprobs)
    lengths = np.array([float(len(option)) for option in result.choices])
    return {"acc": int(np.argmax(logprobs)), "acc_norm": int(np.argmax(logprobs / lengths))}


def task_where(spec: TaskSpec) -> str:
    """How a per-item error names the task: its name and its file."""
    return f"{spec.name} ({spec.source_file})"


def option_list(spec: TaskSpec, field: str, doc: Doc) -> list[str]:
    """The options an expression gives for one document (`field`: `choices` or `contexts`): a list
    of texts, or a one-line error saying what it gave instead and how to write it."""
    source = getattr(spec.prompt, field)
    value = evaluate_expression(source, doc, task_where(spec), f"prompt.{field}")
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, (str, int, float)) for v in value):
        raise UserError(f"task {task_where(spec)}: `prompt.{field}: {source}` gives {value!r:.80} for doc "
                        f"{doc.get('id')}, not a list of texts; name a list field or write a list such as "
                        f"`{field}: \"[A, B, C, D]\"`")
    return [str(v) for v in value]


def gold_index(doc: Doc, options: Sequence[str], expression: str, task: str) -> int:
    """The gold option's index, from an index, a letter ("B") or the option's own text."""
    gold = evaluate_expression(expression, doc, task, "prompt.answer")
    fix = "give `prompt.answer` as an index from 0, a letter or a choice's exact text"
    if isinstance(gold, bool) or not isinstance(gold, (int, str)):
        raise UserError(f"task {task}: the answer of doc {doc.get('id')} is {gold!r}; {fix}")
    if isinstance(gold, str):
        if gold in options:
            return list(options).index(gold)
        if len(gold.strip()) == 1 and gold.strip().upper() in LETTERS[: len(options)]:
            return LETTERS.index(gold.strip().upper())
        if gold.strip().isdigit():
            gold = int(gold.strip())
        else:
            raise UserError(f"task {task}: the answer {gold!r} of doc {doc.get('id')} is neither a choice, "
                            f"a letter A-{LETTERS[len(options) - 1]} nor an index; {fix}")
    if not 0 <= gold < len(options):
        raise UserError(f"task {task}: the answer index {gold} of doc {doc.get('id')} is out of range "
                        f"for its {len(options)} choices (0-{len(options) - 1}); {fix}")
    return gold


class _Loglikelihood(Shape):
    """Shared by both loglikelihood shapes: accuracy metrics, or the task's scorer hook."""

    needs = "loglikelihood"
    formulation = "loglikelihood"

    def __init__(self, context: ShapeContext) -> None:
        super().__init__(context)
        self.scorer = context.hook_function(self.spec.scorer) if self.spec.scorer else None

    def options(self, doc: Doc) -> list[str]:
        return option_list(self.spec, "choices", doc)

    def target(self, doc: Doc) -> int:
        return gold_index(doc, self.options(doc), self.spec.prompt.answer, task_where(self.spec))

    def _delimiter(self) -> str:
        # In chat form the answer opens the assistant turn, so no delimiter goes before it.
        return "" if self.style.apply_chat_template else self.spec.prompt.target_delimiter

    @classmethod
    def metric_names(cls, spec: TaskSpec) -> frozenset[str] | None:
        return None if spec.scorer else frozenset({"acc", "acc_norm"})

    def _result(self, doc: Doc, responses: Sequence[Response]) -> ChoiceResult:
        logprobs = [float(r.logprob) for r in responses]  # type: ignore[arg-type]
        return ChoiceResult(logprobs, [bool(r.is_greedy) for r in responses], self.options(doc), self.target(doc))

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        result = self._result(doc, responses)
        if self.scorer is not None:
            return dict(self.scorer(doc, result))
        return self.accuracy(result)

    def picks(self, doc: Doc, responses: Sequence[Response]) -> dict[str, int] | None:
        return None if self.scorer else choice_picks(self._result(doc, responses))

    def accuracy(self, result: ChoiceResult) -> Scores:
        return {metric: float(pick == result.gold) for metric, pick in choice_picks(result).items()}


@register_shape
class LoglikelihoodChoice(_Loglikelihood):
    task_type = "multiple_choice"

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        return self._assemble(doc, shots, self.spec.prompt.text, lambda d: self.options(d)[self.target(d)])

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        context = self.prompt(doc, shots)
        self.target(doc)  # a bad gold answer is an error before anything is asked, not after
        return [LoglikelihoodRequest(context, f"{self._delimiter()}{choice}") for choice in self.options(doc)]


@register_shape
class MultipleInputs(_Loglikelihood):
    """Each option completes the context (`prompt.contexts`); the shared `prompt.continuation` is
    scored after each. acc_norm divides by the contexts' lengths, as lm-eval does."""

    task_type = "multiple_inputs"

    def options(self, doc: Doc) -> list[str]:
        return option_list(self.spec, "contexts", doc)

    def _continuation(self, doc: Doc) -> str:
        return render(self.spec.prompt.continuation, doc, self.spec.name)

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        return self._prompt_with(doc, shots, self.target(doc))

    def _prompt_with(self, doc: Doc, shots: Sequence[Doc], option: int) -> Prompt:
        """The context completed by one option; a few-shot example is its gold context followed
        by its continuation (lm-eval's layout)."""
        name = self.spec.name
        description = render(self.spec.prompt.description, doc, name) if self.spec.prompt.description else ""
        turns = [Turn(self.options(shot)[self.target(shot)], self._continuation(shot)) for shot in shots]
        return assemble(description, turns, self.options(doc)[option], self.style,
                        self.spec.prompt.target_delimiter, self.spec.prompt.fewshot_delimiter)

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        continuation = f"{self._delimiter()}{self._continuation(doc)}"
        self.target(doc)  # a bad gold answer is an error before anything is asked, not after
        return [LoglikelihoodRequest(self._prompt_with(doc, shots, i), continuation)
                for i in range(len(self.options(doc)))]


_LEADING_LETTER = re.compile(r"^[\s(\[*]*([A-Z])(?:[\s).:\]*,]|$)")
_STATED_LETTER = re.compile(r"answer(?: is)?\s*[:\-]?\s*\(?\**([A-Z])\b", re.IGNORECASE)


def parse_letter(text: str, n_choices: int) -> str | None:
    """The letter a model answered with: a leading letter ("B", "(B)", "B. ...") or an explicit
    statement ("the answer is B"); None when neither is there or it is out of range."""
    match = _LEADING_LETTER.match(text) or _STATED_LETTER.search(text)
    if match and match.group(1).upper() in LETTERS[:n_choices]:
        return match.group(1).upper()
    return None


@register_shape
class LetterChoice(Shape):
    """The model sees the lettered choices and writes the letter of its answer."""

    task_type = "multiple_choice"
    formulation = "generative"
    needs = "generate"
    params = GenerationParams(max_new_tokens=32, stop=("\n\n",))

    def _options(self, doc: Doc) -> list[str]:
        return option_list(self.spec, "choices", doc)

    def target(self, doc: Doc) -> str:
        return LETTERS[gold_index(doc, self._options(doc), self.spec.prompt.answer, task_where(self.spec))]

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        template = self.spec.prompt.letter_text or self.spec.prompt.text
        return self._assemble(doc, shots, template, self.target)

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        self.target(doc)  # a bad gold answer is an error before anything is asked, not after
        return [GenerateRequest(self.prompt(doc, shots), self.params or GenerationParams())]

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        letter = parse_letter(responses[0].text or "", len(self._options(doc)))
        return {"acc": float(letter == self.target(doc)), "answered": float(letter is not None)}

    def primary_metric(self) -> str:
        return "acc"  # the letter formulation has no length-normalised variant

    @classmethod
    def metric_names(cls, spec: TaskSpec) -> frozenset[str] | None:
        return frozenset({"acc", "answered"})
