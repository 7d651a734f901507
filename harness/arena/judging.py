"""Judge requests: one battle prompt (a prompt's turn and two models' answers) rendered with the prompt
set's judge prompt, in both orders, and the judge's replies turned into recorded judgments.

The request itself carries the judge prompt, the question, both answers and their order, so the
response cache's key (judge fingerprint, request) is exactly (judge, prompt, both answers, order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from evalboard.errors import UserError
from evalboard.records.arena_record import Judgment
from evalboard.requests import LoglikelihoodRequest, Message, Prompt, Response, Usage

from .prompt_sets import ArenaPrompt, PromptSet
from .verdicts import VERDICT_CHOICES, parse_verdict

Order = Literal["ab", "ba"]


@dataclass(frozen=True)
class Battle:
    """Two models' answers to one turn of one prompt (answers hold every turn up to it)."""

    prompt: ArenaPrompt
    turn: int
    model_a: str
    model_b: str
    answer_a: tuple[str, ...]
    answer_b: tuple[str, ...]

    @property
    def prompt_id(self) -> str:
        return self.prompt.id if len(self.prompt.turns) == 1 else f"{self.prompt.id}/turn{self.turn + 1}"


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise UserError(f"the judge prompt asks for {{{key}}}, which this prompt set does not provide")


def judge_messages(prompt_set: PromptSet, battle: Battle, order: Order) -> tuple[Message, ...]:
    """The judge's conversation for one order (`ab`: model_a's answer is shown as A)."""
    first, second = (battle.answer_a, battle.answer_b) if order == "ab" else (battle.answer_b, battle.answer_a)
    template = prompt_set.template_for(battle.prompt, battle.turn)
    fields = _Fields(question=battle.prompt.turns[battle.turn], answer_a=first[battle.turn], answer_b=second[battle.turn])
    for k in range(battle.turn + 1):
        fields[f"question_{k + 1}"] = battle.prompt.turns[k]
        fields[f"answer_a_{k + 1}"] = first[k]
        fields[f"answer_b_{k + 1}"] = second[k]
    for k, ref in enumerate(battle.prompt.reference or ()):
        fields[f"ref_answer_{k + 1}"] = ref
    for theirs, ours in prompt_set.judge.fields.items():  # a reference template's own field names
        fields[theirs] = fields[ours]
    try:
        text = template.template.format_map(fields)
    except (ValueError, IndexError) as exc:
        raise UserError(f"judge prompt {template.name!r} is not a valid format string ({exc})") from None
    system: tuple[Message, ...] = (("system", template.system),) if template.system else ()
    return (*system, ("user", text))


JudgeMode = Literal["generate", "likelihood"]
# what a likelihood judge's reply is taken to begin with; the verdict tokens follow it
LIKELIHOOD_LEAD_IN = {"abc": "My final verdict is: ", "arena-hard": "My final verdict is: ", "mM": ""}


def judge_name(spec: str, mode: JudgeMode) -> str:
    """The judge as the arena records it: the two modes are two judges (their quality apart)."""
    return spec if mode == "generate" else f"{spec} (likelihood)"


def likelihood_requests(prompt: Prompt, style: str) -> list[LoglikelihoodRequest]:
    """A likelihood judge reads the judge prompt and is scored on each verdict its prompt offers,
    after the same lead-in: its verdict is the most probable one, so a small local model that cannot
    follow the prompt's format to the end still gives one (evalboard's, not FastChat's, method)."""
    return [LoglikelihoodRequest(prompt, LIKELIHOOD_LEAD_IN[style] + choice) for choice in VERDICT_CHOICES[style]]


def likelihood_reply(style: str, responses: Sequence[Response]) -> Response:
    """The judge's 'reply': its most probable verdict, then every verdict's log-probability (written
    without the brackets, so only the chosen one parses); a failed call fails the judgment."""
    failed = next((r for r in responses if r.error is not None), None)
    if failed is not None:
        return Response(error=failed.error, usage=failed.usage)
    logprobs = [r.logprob if r.logprob is not None else float("-inf") for r in responses]
    choices = VERDICT_CHOICES[style]
    best = choices[max(range(len(choices)), key=logprobs.__getitem__)]
    scores = ", ".join(f"{c.strip('[]')} {lp:.3f}" for c, lp in zip(choices, logprobs))
    text = best if style == "mM" else f"{best} (log-probabilities: {scores})"
    usage = Usage(latency_s=sum(r.usage.latency_s for r in responses),
                  cost_usd=sum(r.usage.cost_usd or 0.0 for r in responses))
    return Response(text=text, usage=usage)


def judgment(prompt_set: PromptSet, battle: Battle, order: Order, judge: str, response: Response) -> Judgment:
    """One recorded judgment; a failed call or a reply without a verdict is kept with verdict None."""
    reply = response.text or ""
    verdict = parse_verdict(reply, prompt_set.judge.verdicts)
    score_a = None
    if verdict.first_score is not None:
        score_a = verdict.first_score if order == "ab" else 1.0 - verdict.first_score
    return Judgment(
        prompt_id=battle.prompt_id, judge=judge, order=order, model_a=battle.model_a, model_b=battle.model_b,
        turns=list(battle.prompt.turns[: battle.turn + 1]), answer_a=list(battle.answer_a[: battle.turn + 1]),
        answer_b=list(battle.answer_b[: battle.turn + 1]),
        reply=reply if response.error is None else f"(judge call failed: {response.error})",
        verdict=verdict.token, score_a=score_a, strong=verdict.strong,
        seconds=response.usage.latency_s, cost_usd=response.usage.cost_usd,
    )
