"""Prompt assembly (plain and chat), the generative letter formulation, and its parser."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pytest
from evalboard.models.adapters.base import Capabilities
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.prompting import PromptStyle
from evalboard.taskdef.registry import discover_tasks
from evalboard.taskdef.shapes.choice import parse_letter

ALL = Capabilities(loglikelihood=True, generate=True, chat=True)


def _first_request(task_name: str, **options):
    task = prepare_task(discover_tasks()[task_name], TaskOptions(limit=2, **options))
    choose_formulation(task, ALL, "test-model")
    return task, task.requests(task.docs[0])


def test_chat_template_turns_few_shot_examples_into_turns() -> None:
    task, requests = _first_request("mmlu", num_fewshot=2, style=PromptStyle(True, "Be brief."))
    messages = requests[0].context
    assert [role for role, _ in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0][1] == "Be brief."
    assert messages[1][1].startswith("The following are multiple choice questions (with answers) about abstract algebra.")
    assert messages[2][1] in "ABCD"
    assert [r.continuation for r in requests] == ["A", "B", "C", "D"]  # no delimiter in chat form


def test_system_prompt_without_chat_template_prefixes_the_text() -> None:
    _, requests = _first_request("arc_easy", style=PromptStyle(False, "You are a scientist."))
    assert requests[0].context.startswith("You are a scientist.\n\nQuestion:")


def test_loglikelihood_needs_logprobs_and_says_so() -> None:
    task = prepare_task(discover_tasks()["arc_easy"], TaskOptions(limit=2, formulation="loglikelihood"))
    with pytest.raises(evalboard.errors.UserError, match="needs logprobs.*--formulation generative"):
        choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=True), "openai:gpt-x")


def test_auto_formulation_falls_back_to_letters_for_chat_only_models() -> None:
    task = prepare_task(discover_tasks()["arc_easy"], TaskOptions(limit=2))
    choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=True), "chat-only")
    assert task.formulation.name == "generative"
    prompt = task.requests(task.docs[0])[0].context
    assert "\nA. " in prompt and prompt.endswith("Answer:")


@pytest.mark.parametrize(
    "text,expected",
    [("B", "B"), (" C. Because", "C"), ("(A)", "A"), ("**D**", "D"), ("The answer is B.", "B"),
     ("answer: c", "C"), ("E", None), ("I am not sure", None), ("", None)],
)
def test_parse_letter(text: str, expected: str | None) -> None:
    assert parse_letter(text, 4) == expected


def test_generative_formulation_runs_end_to_end_with_a_local_model(tiny_model: Path) -> None:
    record = evalboard.evaluate(f"hf:{tiny_model}", "arc_challenge", limit=4, formulation="generative",
                                apply_chat_template=True, output_dir=None)
    entry = record.tasks["arc_challenge"]
    assert entry.formulation == "generative" and entry.primary_metric == "acc"
    assert set(entry.metrics) == {"acc", "answered"}
    sample = record.samples["arc_challenge"][0]
    assert str(sample.prompt).startswith("<|user|>") and sample.responses[0].text is not None
