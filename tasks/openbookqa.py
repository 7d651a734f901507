"""OpenBookQA rows -> the Hub's schema (id, question_stem, choices {text, label}, answerKey).

OLMo's offline test split is stored as evaluation requests ("Question: <stem>\nAnswer:", the choice
texts and the gold index): the stem is the query between ARC's prefix and suffix, and the labels,
always A-D in OpenBookQA, are re-lettered by position. On validation, where both copies ship, this
gives the arrow rows exactly (500 of 500, tests/test_catalogue_parity.py)."""

from __future__ import annotations

from typing import Any

from evalboard.tasks import arc

LABELS = "ABCDEFGH"


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    if source_format != "olmo_requests":
        return [dict(row) for row in rows]
    docs = []
    for doc in arc.to_docs(rows, source_format):
        labels = list(LABELS[: len(doc["choices"])])
        docs.append({"id": doc["id"], "question_stem": doc["question"],
                     "choices": {"text": doc["choices"], "label": labels}, "answerKey": labels[doc["answer"]]})
    return docs
