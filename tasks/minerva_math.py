"""MATH (Hendrycks et al.) as lm-eval 0.4.13's `minerva_math_<subject>` tasks and `minerva_math500`
read and score it: 4 fixed Minerva exemplars (read from lm-eval's own utils file), the gold answer
normalised from the solution's last `\\boxed{}`, `exact_match` by sympy equivalence of the
normalised "Final Answer" and `math_verify` (Hugging Face's checker) beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalboard.taskdef.lm_eval_source import returned_literal, task_dir
from evalboard.taskdef.scorers.math_answers import (
    final_answer_line,
    last_boxed,
    math_verify_match,
    normalise_answer,
    sympy_equivalent,
    unbox,
)

SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
            "prealgebra", "precalculus")
EQUIVALENCE_SECONDS = 5.0  # lm-eval minerva_math's limit per sympy comparison


def math_docs(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of OLMo's request files (tagged `_part`) or of the Hub (tagged `_config`, or MATH-500's
    `subject`) as documents: ids are positions within a subject, so both sources agree."""
    docs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        subject = row.get("_part") or row.get("_config") or ""
        position = seen[subject] = seen.get(subject, -1) + 1
        docs.append({
            "id": f"{subject}/{position}" if subject else str(position),
            "problem": row["problem"],
            "solution": row["solution"],
            "level": str(row["level"]) if "level" in row else None,
            "subject": subject or row.get("subject") or row.get("type"),
        })
    return docs


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    docs = math_docs(rows)
    for doc in docs:  # lm-eval's process_docs: the gold, normalised once
        doc["answer"] = normalise_answer(unbox(last_boxed(doc["solution"])) or "")
    return docs


def fewshot_examples() -> list[dict[str, Any]]:
    samples = returned_literal(task_dir("minerva_math") / "utils.py", "list_fewshot_samples")
    return [{"id": f"minerva-exemplar-{i}", **sample} for i, sample in enumerate(samples)]


def score(doc: dict[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    """lm-eval's process_results on the first sample, and the answer it read (for the log)."""
    text = texts[0]
    answer = normalise_answer(final_answer_line(text))
    return {
        "exact_match": float(sympy_equivalent(answer, doc["answer"], EQUIVALENCE_SECONDS)),
        "math_verify": float(math_verify_match(doc["solution"], text)),
        "extracted_answer": answer,
    }
