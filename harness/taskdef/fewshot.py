"""Choosing few-shot examples: fixed and seeded, independent of run order and --limit."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from evalboard.taskdef.spec import FewshotSpec

Doc = dict[str, Any]


class SequentialDraws:
    """lm-eval's default few-shot sampler (`ContextSampler`): one `random.Random(seed)` whose draws
    `sample(pool, k)` go to the documents in split order, so the split's i-th document gets the
    i-th draw (k + 1 drawn, the document itself dropped, when the pool is the evaluated split).
    `random.sample` consumes the generator by pool size and k alone, so replaying the draws up to a
    position gives lm-eval's examples for that document whatever --limit is."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._draws: list[list[int]] = []

    def indices(self, position: int, pool_size: int, k: int) -> list[int]:
        while len(self._draws) <= position:
            self._draws.append(self._rng.sample(range(pool_size), min(k, pool_size)))
        return self._draws[position]


def select_fewshot(doc: Doc, pool: Sequence[Doc], k: int, spec: FewshotSpec, seed: int,
                   same_split: bool = False, draws: SequentialDraws | None = None,
                   position: int | None = None) -> list[Doc]:
    """`lm_eval_random`: see SequentialDraws. `first_n`/`fixed`: the first k of the pool (after matching); `seeded`: k examples drawn
    with a generator seeded by (seed, document id), so a document always gets the same examples
    whichever other documents are evaluated. When the pool is the evaluated split itself, the
    document is never its own example (ids are only unique within a split)."""
    if k <= 0:
        return []
    if spec.sampler == "lm_eval_random":
        if draws is None or position is None:
            raise ValueError("the lm_eval_random sampler needs the document's position and the run's draws")
        drawn = [pool[i] for i in draws.indices(position, len(pool), k + (same_split or spec.draw_one_more))]
        return [d for d in drawn if not (same_split and d.get("id") == doc.get("id"))][:k]
    candidates = [d for d in pool if not (same_split and d.get("id") == doc.get("id"))]
    if spec.match_field:
        candidates = [d for d in candidates if d.get(spec.match_field) == doc.get(spec.match_field)]
    if spec.sampler in ("first_n", "fixed"):
        return candidates[:k]
    rng = random.Random(f"{seed}:{doc.get('id')}")
    return rng.sample(candidates, min(k, len(candidates)))

