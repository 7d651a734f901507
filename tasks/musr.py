"""MuSR rows (the Hub's TAUR-Lab/MuSR schema) -> documents: the Hub stores `choices` as the text of
a Python list, which lm-eval reads with `ast.literal_eval`; so does this."""

from __future__ import annotations

import ast
from typing import Any


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    docs = []
    for position, row in enumerate(rows):
        choices = row["choices"]
        docs.append({
            "id": str(position),
            "narrative": row["narrative"],
            "question": row["question"],
            "choices": list(ast.literal_eval(choices) if isinstance(choices, str) else choices),
            "answer": row["answer_choice"],
        })
    return docs
