"""Per-item score frames from a Bradley–Terry-like model with known skills, for the ratings tests
and benchmarks/ratings_scale.py."""

from __future__ import annotations

import numpy as np
import pandas as pd


def per_item(scores: np.ndarray, models: list[str], task: str | None = None) -> pd.DataFrame:
    """(items, models) score matrix (nan = not answered) -> per-item frame."""
    n, m = scores.shape
    frame = pd.DataFrame(
        {
            "model": np.tile(np.asarray(models, dtype=object), n),
            "item_key": np.repeat([f"q{k:05d}" for k in range(n)], m),
            "score": scores.ravel(),
        }
    )
    frame = frame[~np.isnan(frame["score"])].reset_index(drop=True)
    if task is not None:
        frame.insert(0, "task", task)
    return frame


def simulated(n_models: int, n_items: int, tasks: int, seed: int, binary: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    skill = rng.normal(0, 1, n_models)
    models = [f"model-{k:03d}" for k in range(n_models)]
    frames = []
    for t in range(tasks):
        difficulty = rng.normal(0, 1, n_items)
        p = 1 / (1 + np.exp(difficulty[:, None] - skill[None, :]))
        scores = (rng.random(p.shape) < p).astype(float) if binary else np.round(p + rng.normal(0, 0.1, p.shape), 2)
        frames.append(per_item(scores, models, task=f"task{t}"))
    return pd.concat(frames, ignore_index=True)
