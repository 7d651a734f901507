"""Per-sample scores -> task metrics with standard errors.

A score that is a list (IFEval's per-instruction results) is pooled over all samples, which is
lm-eval's instruction-level aggregation; everything else is a mean over documents. With a group
field (MMLU's subject) the plain metric is the micro average (lm-eval's group score, weighted by
size) and `<metric>_macro` the mean of the per-group means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from evalboard.stats import MetricValue, metric_value

__all__ = ["MetricValue", "aggregate", "metric_value"]


def _values(scores: Sequence[dict[str, Any]], key: str) -> list[float]:
    pooled: list[float] = []
    for score in scores:
        value = score.get(key)
        if isinstance(value, (list, tuple)):
            pooled.extend(float(v) for v in value)
        elif value is not None:
            pooled.append(float(value))
    return pooled


def aggregate(
    scores: Sequence[dict[str, Any]],
    groups: Sequence[str | None] | None = None,
    aggregations: Mapping[str, Callable[[list[Any]], MetricValue]] | None = None,
) -> dict[str, MetricValue]:
    """Each metric's task figure. `aggregations` names metrics that are not plain means: their
    per-document values go to the given function as they are (a task shape's own aggregation)."""
    aggregations = aggregations or {}
    keys = list(dict.fromkeys(key for score in scores for key in score))
    metrics = {
        key: aggregations[key]([s[key] for s in scores if key in s]) if key in aggregations
        else metric_value(_values(scores, key))
        for key in keys
    }
    if groups is not None and any(g is not None for g in groups):
        for key in (k for k in keys if k not in aggregations):
            by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for score, group in zip(scores, groups):
                by_group[str(group)].append(score)
            means = [float(np.mean(_values(members, key))) for members in by_group.values()]
            macro = metric_value(means)
            metrics[f"{key}_macro"] = MetricValue(macro.value, macro.stderr, len(scores))
    return metrics
