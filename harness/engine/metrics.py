"""Per-sample scores -> task metrics with standard errors.

A score that is a list (IFEval's per-instruction results) is pooled over all samples, which is
lm-eval's instruction-level aggregation; everything else is a mean over documents.

With a group field (MMLU's subject) each group is a subtask with its own figures
(`subtask_metrics`, lm-eval's per-subject rows), and the task's figures are lm-eval's group
figures: the plain metric is the micro average (the mean over all items, which is lm-eval's
size-weighted mean of the subtask means) with lm-eval's pooled standard error, and
`<metric>_macro` the mean of the subtask means with lm-eval's standard error of an unweighted
mean (its `weight_by_size: false`). See docs/results-format.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from evalboard.stats import MetricValue, metric_value, pooled_stderr, unweighted_mean_stderr

__all__ = ["MetricValue", "aggregate", "metric_value", "subtask_metrics"]

Aggregations = Mapping[str, Callable[[list[Any]], MetricValue]]


def _values(scores: Sequence[dict[str, Any]], key: str) -> list[float]:
    pooled: list[float] = []
    for score in scores:
        value = score.get(key)
        if isinstance(value, (list, tuple)):
            pooled.extend(float(v) for v in value)
        elif value is not None:
            pooled.append(float(value))
    return pooled


def _task_metrics(scores: Sequence[dict[str, Any]], aggregations: Aggregations) -> dict[str, MetricValue]:
    keys = dict.fromkeys(key for score in scores for key in score)
    return {
        key: aggregations[key]([s[key] for s in scores if key in s]) if key in aggregations
        else metric_value(_values(scores, key))
        for key in keys
    }


def subtask_metrics(
    scores: Sequence[dict[str, Any]],
    groups: Sequence[str | None],
    aggregations: Aggregations | None = None,
) -> dict[str, dict[str, MetricValue]]:
    """Each group's own figures (group name -> metric -> value), as if it were a task of its own;
    groups in name order, so a record does not depend on the order the items came in."""
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for score, group in zip(scores, groups):
        members[str(group)].append(score)
    return {name: _task_metrics(members[name], aggregations or {}) for name in sorted(members)}


def _group_stderr(parts: list[MetricValue], weighted: bool) -> float | None:
    """lm-eval's group standard error from the subtasks' (None where it is undefined)."""
    known = [p.stderr for p in parts if p.stderr is not None]
    if weighted:  # a one-item subtask has no variance of its own: it adds nothing to the pool
        stderr = pooled_stderr([p.stderr if p.stderr is not None else 0.0 for p in parts], [p.n for p in parts])
    elif len(known) == len(parts):
        stderr = unweighted_mean_stderr(known)
    else:
        return None
    return stderr if np.isfinite(stderr) else None


def aggregate(
    scores: Sequence[dict[str, Any]],
    groups: Sequence[str | None] | None = None,
    aggregations: Aggregations | None = None,
    pooled: bool = True,
) -> dict[str, MetricValue]:
    """Each metric's task figure. `aggregations` names metrics that are not plain means: their
    per-document values go to the given function as they are (a task shape's own aggregation),
    for the task and for each group alike. With groups, the stderr is lm-eval's group one (pooled
    over the groups) unless `pooled` is false (one lm-eval task with a breakdown: the plain one)."""
    aggregations = aggregations or {}
    metrics = _task_metrics(scores, aggregations)
    if groups is None or all(g is None for g in groups):
        return metrics
    subtasks = subtask_metrics(scores, groups, aggregations).values()
    for key in [k for k in metrics if k not in aggregations]:
        parts = [figures[key] for figures in subtasks if key in figures]
        micro = metrics[key]
        if pooled:
            metrics[key] = MetricValue(micro.value, _group_stderr(parts, weighted=True), micro.n)
        macro = float(np.mean([p.value for p in parts]))
        metrics[f"{key}_macro"] = MetricValue(macro, _group_stderr(parts, weighted=False), len(scores))
    return metrics
