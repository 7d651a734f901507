"""Choosing few-shot examples: fixed and seeded, independent of run order and --limit."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from evalboard.taskdef.spec import FewshotSpec

Doc = dict[str, Any]


def select_fewshot(doc: Doc, pool: Sequence[Doc], k: int, spec: FewshotSpec, seed: int,
                   same_split: bool = False) -> list[Doc]:
    """`first_n`/`fixed`: the first k of the pool (after matching); `seeded`: k examples drawn
    with a generator seeded by (seed, document id), so a document always gets the same examples
    whichever other documents are evaluated. When the pool is the evaluated split itself, the
    document is never its own example (ids are only unique within a split)."""
    if k <= 0:
        return []
    candidates = [d for d in pool if not (same_split and d.get("id") == doc.get("id"))]
    if spec.match_field:
        candidates = [d for d in candidates if d.get(spec.match_field) == doc.get(spec.match_field)]
    if spec.sampler in ("first_n", "fixed"):
        return candidates[:k]
    if spec.sampler == "stream":
        raise AssertionError("stream examples are drawn for the whole split at once (stream_fewshot)")
    rng = random.Random(f"{seed}:{doc.get('id')}")
    return rng.sample(candidates, min(k, len(candidates)))


def stream_fewshot(docs: Sequence[Doc], pool: Sequence[Doc], k: int, seed: int,
                   draw_one_more: bool = False) -> dict[str, list[Doc]]:
    """lm-eval's default sampler, reproduced so its few-shot prompts are too (the v1 leaderboard's
    ARC 25-shot, HellaSwag 10-shot, Winogrande 5-shot): one `random.Random(seed)` and, for each
    document in split order, `sample(pool, k)`, or `sample(pool, k + 1)` with the document removed
    and the first k kept (`draw_one_more`: the pool is the evaluated split, or lm-eval's task names
    no test split). A document's examples depend on the ones before it, so they are drawn
    for the whole split, before --limit cuts it: a shorter run asks the same prompts."""
    rng = random.Random(seed)
    shots: dict[str, list[Doc]] = {}
    for doc in docs:
        if draw_one_more:
            drawn = [d for d in rng.sample(list(pool), k + 1) if d != doc][:k]
        else:
            drawn = rng.sample(list(pool), k)
        shots[str(doc["id"])] = drawn
    return shots
