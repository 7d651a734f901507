"""The Ray executor against the local run: one evaluation run in this process, then sharded over 1
and 2 replicas on a real local Ray cluster (a head and a worker node, one CPU each, from
tests/ray_local_cluster.py), then once more with a replica SIGKILLed mid-run.

    .venv/bin/python benchmarks/ray_executor.py [--model smollm2|tiny] [--tasks arc_easy,hellaswag] [--limit 20]

Prints the wall time of each run and its ratio to the local one, the replicas' start (Ray actor
plus model load, timed on its own), the driver's overhead per shard ((ray - local - start) / shards),
the time from the kill to the next answer reaching the driver's cache, and checks that every run's
per-sample loglikelihoods and metrics equal the local run's. On a 2-core machine the replicas share
the cores the local run had to itself, so this cannot show a speed-up, only what sharding costs.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["RAY_AUTH_MODE"] = "disabled"  # the local cluster's setting, for this driver too
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import evalboard  # noqa: E402  (sets the thread and MKL settings before torch loads)
from evalboard.engine.executors import Placement  # noqa: E402
from evalboard.engine.executors.ray_cluster import RayShardedModel, connect  # noqa: E402
from evalboard.models.adapters.base import AdapterSettings, ModelSpec  # noqa: E402
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from ray_local_cluster import LocalRayCluster  # noqa: E402


def model_path(name: str, folder: Path) -> Path:
    if name == "tiny":
        from tiny_models import build_tiny_llama

        return build_tiny_llama(folder / "tiny-llama")
    return packaged_model_dir("smollm2-135m-instruct")


def same_results(local: Any, other: Any, tasks: list[str]) -> bool:
    for task in tasks:
        a, b = local.load_samples(task), other.load_samples(task)
        if len(a) != len(b) or local.tasks[task].metrics != other.tasks[task].metrics:
            return False
        for x, y in zip(a, b):
            if x.model_input != y.model_input or any(
                    abs((p.logprob or 0.0) - (q.logprob or 0.0)) > 1e-4 for p, q in zip(x.responses, y.responses)):
                return False
    return True


def cached_rows(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.Error:
        return 0


def replica_start_s(spec: str, address: str) -> float:
    """One replica's start on the cluster (actor placed, model loaded, info returned), and its close."""
    connect(address)
    began = time.perf_counter()
    model = RayShardedModel(ModelSpec.parse(spec), AdapterSettings(), Placement())
    took = time.perf_counter() - began
    model.close()
    return took


def killed_run(spec: str, tasks: list[str], limit: int, cluster: LocalRayCluster, cache: Path) -> dict[str, Any]:
    """A 1-replica run (the first task) with shard size 1 whose replica is SIGKILLed once answers are coming in."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        began = time.perf_counter()
        outcome["record"] = evalboard.evaluate(spec, tasks, limit=limit, output_dir=None, cache=cache,
                                               executor="ray", ray_address=cluster.address, shard_size=1)
        outcome["ended_at"] = time.perf_counter()
        outcome["wall_s"] = outcome["ended_at"] - began

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive() and "killed_at" not in outcome:
        pids = cluster.replica_processes()
        if pids and cached_rows(cache) >= 4:
            outcome["rows_at_kill"] = cached_rows(cache)
            os.kill(pids[0], signal.SIGKILL)
            outcome["killed_at"] = time.perf_counter()
        time.sleep(0.005)
    while thread.is_alive() and "recovered_s" not in outcome:
        if cached_rows(cache) > outcome.get("rows_at_kill", math.inf):
            outcome["recovered_s"] = time.perf_counter() - outcome["killed_at"]
        time.sleep(0.01)
    thread.join()
    if "killed_at" in outcome and "recovered_s" not in outcome:  # the shard lost was the last one
        outcome["recovered_s"] = outcome["ended_at"] - outcome["killed_at"]
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--tasks", default="arc_easy,hellaswag")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--shard-size", type=int, default=16)
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"hf:{model_path(args.model, Path(tmp))}"
        began = time.perf_counter()
        local = evalboard.evaluate(spec, tasks, limit=args.limit, output_dir=None, cache=False)
        local_s = time.perf_counter() - began
        unique = local.usage.unique_requests
        print(f"model {args.model}, tasks {','.join(tasks)}, limit {args.limit}: {unique} requests, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"local: {local_s:.2f} s")
        cluster = LocalRayCluster(workers=1)
        try:
            start_s = replica_start_s(spec, cluster.address)
            print(f"one replica's start on the cluster (actor + model load): {start_s:.2f} s")
            walls: dict[int, float] = {}
            for replicas in (1, 2):
                began = time.perf_counter()
                record = evalboard.evaluate(spec, tasks, limit=args.limit, output_dir=None, cache=False,
                                            executor="ray", ray_address=cluster.address, replicas=replicas,
                                            shard_size=args.shard_size)
                took = walls[replicas] = time.perf_counter() - began
                stats = record.usage.adapter["executor"]
                # one replica does the local run's work in series: what is left over is the executor's
                cost = (f"overhead per shard {(took - local_s - start_s) / stats['shards'] * 1000:.0f} ms"
                        if replicas == 1 else f"{walls[1] / took:.2f}x faster than 1 replica")
                print(f"ray, {replicas} replica(s) on {stats['nodes']} node(s), shard size {args.shard_size}: "
                      f"{took:.2f} s = {took / local_s:.2f}x local; {stats['shards']} shards; {cost}; "
                      f"same results as local: {same_results(local, record, tasks)}")
            outcome = killed_run(spec, tasks[:1], args.limit, cluster, Path(tmp) / "killed.sqlite")
            record = outcome["record"]
            stats = record.usage.adapter["executor"]
            if "killed_at" not in outcome:
                raise SystemExit("the run ended before 4 answers were in; no replica was killed (use a larger --limit)")
            print(f"ray, 1 replica, shard size 1, replica SIGKILLed after {outcome['rows_at_kill']} answers: "
                  f"{outcome['wall_s']:.2f} s; next answer {outcome['recovered_s']:.2f} s after the kill; "
                  f"{stats['shards']} shards for {record.usage.unique_requests} requests, "
                  f"{stats['shards_resubmitted']} resubmitted; same results as local: "
                  f"{same_results(local, record, tasks[:1])}")
        finally:
            import ray

            ray.shutdown()
            cluster.stop()


if __name__ == "__main__":
    main()
