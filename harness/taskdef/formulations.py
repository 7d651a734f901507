"""How a task's documents become requests and how responses become per-sample scores.

Multiple-choice tasks have two formulations: `loglikelihood` (score every choice; acc and
acc_norm exactly as lm-eval defines them) and `generative` (the model writes a letter; for chat
APIs without logprobs). Free-form `generate` tasks score their generations with a task hook.
Results always record which formulation produced a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from evalboard.taskdef.prompting import LETTERS, PromptStyle, Turn, assemble, evaluate_expression, render
from evalboard.requests import (
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Prompt,
    Request,
    Response,
)
from evalboard.taskdef.spec import TaskSpec

Doc = dict[str, Any]
Scores = dict[str, Any]  # metric -> float, or list of floats (pooled at aggregation)


class Formulation(Protocol):
    name: str

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt: ...

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]: ...

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores: ...

    def target(self, doc: Doc) -> Any: ...

    def score_all(self, docs: Sequence[Doc], responses: Sequence[Sequence[Response]]) -> list[Scores]: ...


@dataclass
class _Prompted:
    spec: TaskSpec
    style: PromptStyle

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        raise NotImplementedError

    def score_all(self, docs: Sequence[Doc], responses: Sequence[Sequence[Response]]) -> list[Scores]:
        return [self.score(doc, answers) for doc, answers in zip(docs, responses)]

    def _assemble(self, doc: Doc, shots: Sequence[Doc], question_template: str,
                  answer_of: Callable[[Doc], str]) -> Prompt:
        name = self.spec.name
        description = render(self.spec.prompt.description, doc, name) if self.spec.prompt.description else ""
        turns = [Turn(render(question_template, shot, name), answer_of(shot)) for shot in shots]
        return assemble(
            description, turns, render(question_template, doc, name), self.style,
            self.spec.prompt.target_delimiter, self.spec.prompt.fewshot_delimiter,
        )


class LoglikelihoodChoice(_Prompted):
    """Score each choice's continuation; acc = argmax loglikelihood, acc_norm = argmax of
    loglikelihood divided by the choice's length in characters (lm-eval's definitions)."""

    name = "loglikelihood"

    def choices(self, doc: Doc) -> list[str]:
        return [str(c) for c in evaluate_expression(self.spec.prompt.choices, doc, self.spec.name)]

    def target(self, doc: Doc) -> int:
        return int(doc["answer"])

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        return self._assemble(doc, shots, self.spec.prompt.text, lambda d: self.choices(d)[int(d["answer"])])

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        context = self.prompt(doc, shots)
        # In chat form the answer opens the assistant turn, so no delimiter goes before it.
        delimiter = "" if self.style.apply_chat_template else self.spec.prompt.target_delimiter
        return [LoglikelihoodRequest(context, f"{delimiter}{choice}") for choice in self.choices(doc)]

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        logprobs = np.array([float(r.logprob) for r in responses])
        lengths = np.array([float(len(choice)) for choice in self.choices(doc)])
        gold = self.target(doc)
        return {
            "acc": float(np.argmax(logprobs) == gold),
            "acc_norm": float(np.argmax(logprobs / lengths) == gold),
        }


_LEADING_LETTER = re.compile(r"^[\s(\[*]*([A-Z])(?:[\s).:\]*,]|$)")
_STATED_LETTER = re.compile(r"answer(?: is)?\s*[:\-]?\s*\(?\**([A-Z])\b", re.IGNORECASE)


def parse_letter(text: str, n_choices: int) -> str | None:
    """The letter a model answered with: a leading letter ("B", "(B)", "B. ...") or an explicit
    statement ("the answer is B"); None when neither is there or it is out of range."""
    match = _LEADING_LETTER.match(text) or _STATED_LETTER.search(text)
    if match and match.group(1).upper() in LETTERS[:n_choices]:
        return match.group(1).upper()
    return None


class LetterChoice(_Prompted):
    """The model sees the lettered choices and writes the letter of its answer."""

    name = "generative"
    params = GenerationParams(max_new_tokens=32, stop=("\n\n",))

    def target(self, doc: Doc) -> str:
        return LETTERS[int(doc["answer"])]

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        template = self.spec.prompt.letter_text or self.spec.prompt.text
        return self._assemble(doc, shots, template, self.target)

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        return [GenerateRequest(self.prompt(doc, shots), self.params)]

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        letter = parse_letter(responses[0].text or "", len(doc["choices"]))
        return {"acc": float(letter == self.target(doc)), "answered": float(letter is not None)}


@dataclass
class FreeGeneration(_Prompted):
    """Generate-until tasks (GSM8K, HumanEval, IFEval): n samples per document, scored by the
    task's `scorer` hook, which sees every sample's text."""

    params: GenerationParams = GenerationParams()
    samples: int = 1
    scorer: Callable[[Doc, list[str]], Scores] | None = None
    batch_scorer: Callable[[Sequence[Doc], list[list[str]]], list[Scores]] | None = None
    name: str = "generate"

    def target(self, doc: Doc) -> Any:
        return render(self.spec.prompt.target, doc, self.spec.name) if self.spec.prompt.target else None

    def prompt(self, doc: Doc, shots: Sequence[Doc]) -> Prompt:
        return self._assemble(doc, shots, self.spec.prompt.text, lambda d: str(self.target(d)))

    def requests(self, doc: Doc, shots: Sequence[Doc]) -> list[Request]:
        prompt = self.prompt(doc, shots)
        return [GenerateRequest(prompt, self.params, sample=i) for i in range(self.samples)]

    def score(self, doc: Doc, responses: Sequence[Response]) -> Scores:
        assert self.scorer is not None
        return self.scorer(doc, [r.text or "" for r in responses])

    def score_all(self, docs: Sequence[Doc], responses: Sequence[Sequence[Response]]) -> list[Scores]:
        if self.batch_scorer is None:
            return super().score_all(docs, responses)
        return self.batch_scorer(docs, [[r.text or "" for r in answers] for answers in responses])
