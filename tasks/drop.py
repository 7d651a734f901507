"""DROP (Dua et al. 2019) as lm-eval 0.4.13's `drop` asks and scores it: "{passage} {question}",
the answer up to the first full stop, EM and F1 against every gold with DROP's own normalisation
and number handling (evalboard.taskdef.scorers.drop_answers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalboard.taskdef.scorers.drop_answers import best_em_and_f1, gold_answers


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    """Hub rows (raw `answer` and `validated_answers`) or OLMo's subsample (golds already made,
    in the same order): ids are DROP's query ids."""
    docs = []
    for row in rows:
        golds = [tuple(g) for g in row["answers"]] if "answers" in row else gold_answers(row)
        docs.append({"id": row["query_id"], "passage": row["passage"], "question": row["question"],
                     "answers": [list(g) for g in golds],
                     # lm-eval renders a few-shot example's target from the raw `answer`; OLMo's rows
                     # lack it, and their own target (only logged) is the first gold's spans
                     "answer": row.get("answer", list(golds[0]))})
    return docs


def score(doc: dict[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    """lm-eval's process_results on the first sample."""
    return best_em_and_f1(texts[0], doc["answers"])
