"""Task figures from per-sample scores: a group task's subtask rows and lm-eval's group figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from evalboard.engine.metrics import aggregate, subtask_metrics
from evalboard.stats import mean_stderr, metric_value, pooled_stderr


def _scores(sizes: dict[str, int], seed: int = 0) -> tuple[list[dict[str, float]], list[str]]:
    rng = np.random.default_rng(seed)
    groups = [name for name, n in sizes.items() for _ in range(n)]
    order = rng.permutation(len(groups))  # items of a group need not be adjacent
    groups = [groups[i] for i in order]
    return [{"acc": float(rng.integers(0, 2))} for _ in groups], groups


def test_group_figures_are_lm_eval_s_and_the_value_is_unchanged() -> None:
    scores, groups = _scores({"b": 40, "a": 25, "c": 9})
    metrics = aggregate(scores, groups)
    subtasks = subtask_metrics(scores, groups)
    assert list(subtasks) == ["a", "b", "c"]
    for name, figures in subtasks.items():
        assert figures["acc"] == metric_value([s["acc"] for s, g in zip(scores, groups) if g == name])
    plain = metric_value([s["acc"] for s in scores])
    assert metrics["acc"].value == plain.value and metrics["acc"].n == 74
    parts = [f["acc"] for f in subtasks.values()]
    assert metrics["acc"].stderr == pooled_stderr([p.stderr for p in parts], [p.n for p in parts])
    assert metrics["acc"].stderr != pytest.approx(plain.stderr, rel=1e-6)
    assert metrics["acc_macro"].value == pytest.approx(np.mean([p.value for p in parts]))
    assert metrics["acc_macro"].stderr == pytest.approx(math.sqrt(sum(p.stderr**2 for p in parts)) / 3)
    assert aggregate(scores)["acc"] == plain  # no group field: the plain figures


def test_a_one_item_subtask_adds_no_variance_of_its_own() -> None:
    """lm-eval has no stderr for a one-item subtask and so none for its group; its pooled variance
    is defined all the same (the item counts in N and k, not in the sum)."""
    scores, groups = _scores({"a": 30, "b": 20})
    values = {g: [s["acc"] for s, h in zip(scores, groups) if h == g] for g in "ab"}
    metrics = aggregate(scores + [{"acc": 1.0}], groups + ["lone"])
    within = sum((n - 1) * mean_stderr(v) ** 2 * n for v in values.values() for n in [len(v)])
    assert metrics["acc"].stderr == pytest.approx(math.sqrt(within / (51 - 3) / 51), rel=1e-12)
    assert metrics["acc_macro"].stderr is None  # the unweighted mean needs every subtask's stderr
