"""HumanEval rows -> documents; completions are executed in the sandbox (never outside it), each
judged by the problem's own tests running in a separate sandbox that the completion cannot touch,
and scored with the unbiased pass@k estimator, via evalboard.execution.code_execution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalboard.execution.code_execution import checked_program, extract_code_from_chat, score_each

KS = (1, 10, 100)


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    keep = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    return [{"id": row["task_id"], **{k: row[k] for k in keep}} for row in rows]


def _scores(docs: Sequence[dict[str, Any]], completions: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return score_each(docs, completions, checked_program, KS)


def score_batch(docs: Sequence[dict[str, Any]], responses: Sequence[Sequence[str]]) -> list[dict[str, float]]:
    """Completion style: the model continued the prompt; prompt + completion is the program."""
    return _scores(docs, responses)


def score_batch_chat(docs: Sequence[dict[str, Any]], responses: Sequence[Sequence[str]]) -> list[dict[str, float]]:
    """Chat style: take the code block and keep the function signature working."""
    return _scores(docs, [[extract_code_from_chat(text, doc) for text in texts] for doc, texts in zip(docs, responses)])
