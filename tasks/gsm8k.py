"""GSM8K rows -> documents {id, question, answer}; scoring with lm-eval's two filters
(strict-match and flexible-extract), via evalboard.taskdef.scorers.gsm8k."""

from __future__ import annotations

from typing import Any

from evalboard.taskdef.scorers.gsm8k import cot_fewshot_exemplars, score_gsm8k


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    # Ids are positions in the test split: the same in OLMo's copy and on the Hub.
    return [{"id": str(i), "question": row["question"], "answer": row["answer"]} for i, row in enumerate(rows)]


def fewshot_examples() -> list[dict[str, Any]]:
    """gsm8k_cot's 8 fixed chain-of-thought exemplars (read from lm-eval's task file)."""
    return [{"id": f"cot-exemplar-{i}", **example} for i, example in enumerate(cot_fewshot_exemplars())]


def score(doc: dict[str, Any], responses: list[str]) -> dict[str, float]:
    return score_gsm8k(doc, responses[0], "gsm8k")


def score_cot(doc: dict[str, Any], responses: list[str]) -> dict[str, float]:
    return score_gsm8k(doc, responses[0], "gsm8k_cot")
