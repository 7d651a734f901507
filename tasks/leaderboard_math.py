"""MATH Level 5 as the Open LLM Leaderboard v2 scores it (lm-eval 0.4.13's frozen
`leaderboard_math_<subject>_hard` utilities): its own copy of the 4 Minerva exemplars, the gold left
unnormalised, `exact_match` by `math-verify` and `exact_match_original` by the frozen Minerva
normalisation and a 1-second sympy comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalboard.taskdef.lm_eval_source import returned_literal, task_dir
from evalboard.taskdef.scorers.math_answers import (
    INVALID_ANSWER,
    final_answer_line,
    last_boxed,
    math_verify_match,
    normalise_answer,
    sympy_equivalent,
    unbox,
)
from evalboard.tasks.minerva_math import math_docs

EQUIVALENCE_SECONDS = 1.0  # the leaderboard's limit per sympy comparison


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    docs = [doc for doc in math_docs(rows) if doc["level"] == "Level 5"]
    for doc in docs:
        doc["answer"] = unbox(last_boxed(doc["solution"])) or INVALID_ANSWER
    return docs


def fewshot_examples() -> list[dict[str, Any]]:
    samples = returned_literal(task_dir("leaderboard", "math") / "utils.py", "list_fewshot_samples")
    return [{"id": f"leaderboard-exemplar-{i}", **sample} for i, sample in enumerate(samples)]


def _original(doc: dict[str, Any], text: str) -> float:
    answer = normalise_answer(final_answer_line(text), revised=False)
    if answer == INVALID_ANSWER:
        return 0.0
    gold = normalise_answer(doc["answer"], revised=False)
    same = answer.strip() == gold.strip() or sympy_equivalent(answer, gold, EQUIVALENCE_SECONDS, identical_is_equal=False)
    return float(same)


def score(doc: dict[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    text = texts[0]
    return {
        "exact_match": float(math_verify_match(doc["solution"], text, gold_latex_only=True)),
        "exact_match_original": _original(doc, text),
        "extracted_answer": normalise_answer(final_answer_line(text), revised=False),
    }
