"""Where a run's model requests are answered: in this process (`local`) or on a Ray cluster (`ray`).

An executor opens the model as something with the `ModelAdapter` interface (capabilities,
fingerprint, the three request kinds with a per-answer callback, close), so the evaluator plans,
caches, scores and writes the record the same way whichever one answers. See docs/cluster.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from evalboard.models.adapters.base import AdapterSettings, ModelAdapter, ModelSpec

ExecutorChoice = Literal["local", "ray"]


@dataclass(frozen=True)
class Placement:
    """What one model replica asks the cluster for (None: the default for its scheme), how many
    replicas serve the model, and how many requests go to a replica at a time (one shard)."""

    replicas: int = 1
    shard_size: int = 16
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory_gb: float | None = None


@dataclass(frozen=True)
class ExecutorSettings:
    kind: ExecutorChoice = "local"
    ray_address: str | None = None
    placement: Placement = Placement()


def open_model(executor: ExecutorSettings, spec: ModelSpec, settings: AdapterSettings) -> ModelAdapter:
    """The model, ready to answer requests, on the executor the run asked for."""
    if executor.kind == "ray":
        from evalboard.engine.executors.ray_cluster import RayShardedModel, connect

        connect(executor.ray_address)
        return RayShardedModel(spec, settings, executor.placement)
    from evalboard.engine.executors.local import open_local

    return open_local(spec, settings)
