"""GPQA rows (the original release's columns, as in the CSV and on the Hub) -> documents
{id, Question, choices, answer}, with lm-eval's choice shuffle.

lm-eval's `leaderboard_gpqa_*` cleans each answer (its `preprocess`: strip, " [title]" -> ". ",
drop "[...]" spans, collapse double spaces) and shuffles the four with Python's global `random`,
which `simple_evaluate` has just seeded with 0; `datasets` caches that first pass, so every later
read of the split sees the same order. Here a `random.Random(0)` is drawn from in split order,
the same sequence, which `tests/test_gpqa_parity.py` checks against lm-eval itself. (When lm-eval
loads the three subsets in one run, the later ones continue the first one's random stream unless a
cached pass exists; evaluating each subset on its own, as here, is what its own task gives.)
The question itself is left as it is: lm-eval's prompt uses the raw `Question`.
"""

from __future__ import annotations

import random
import re
from typing import Any

SEED = 0  # lm-eval's default random_seed, the state its process_docs shuffles from
ANSWER_COLUMNS = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3", "Correct Answer")


def clean(text: str | None) -> str:
    if text is None:
        return " "
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    docs = []
    for position, row in enumerate(rows):
        choices = [clean(row[column]) for column in ANSWER_COLUMNS]
        rng.shuffle(choices)
        docs.append({
            "id": row.get("Record ID") or str(position),
            "Question": row["Question"],
            "choices": choices,
            "answer": choices.index(clean(row["Correct Answer"])),
        })
    return docs
