"""IFEval rows -> documents; the four metrics come from lm-eval's own instruction checkers."""

from __future__ import annotations

from typing import Any

from evalboard.taskdef.scorers.ifeval import normalise_ifeval_doc, score_ifeval


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    docs = []
    for row in rows:
        doc = normalise_ifeval_doc(row)  # the Hub's kwargs list every argument, unused ones None
        docs.append({"id": str(doc["key"]), **doc})
    return docs


def score(doc: dict[str, Any], responses: list[str]) -> dict[str, Any]:
    # prompt-level values are booleans; instruction-level ones are lists, pooled over all
    # instructions at aggregation (lm-eval's inst-level mean)
    return score_ifeval(doc, responses[0])
