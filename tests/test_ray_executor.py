"""`--executor ray` on a real Ray cluster on 127.0.0.1 (a head and a worker node, one CPU each,
started once for the module): a sharded run equals the local run sample by sample and fills the
driver's response cache; a replica killed mid-run loses and repeats nothing; a nightly board run
on the cluster gives the very page a local one does; a wrong address or a missing Ray is one line."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import evalboard
import pytest
from cli_helpers import assert_one_line_error, run_cli
from evalboard.engine.nightly import load_config, run_update
from ray_local_cluster import LocalRayCluster, replica_processes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # the test cluster's setting, for this driver too
    started = LocalRayCluster(workers=1)
    try:
        yield started
    finally:
        import ray

        ray.shutdown()
        started.stop()
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before


def _assert_same_samples(local: Any, sharded: Any, tasks: list[str]) -> None:
    for task in tasks:
        assert len(sharded.samples[task]) == len(local.samples[task]) > 0
        for a, b in zip(local.samples[task], sharded.samples[task]):
            assert (a.index, a.doc_id, a.target, a.prompt) == (b.index, b.doc_id, b.target, b.prompt)
            assert a.model_input is not None and a.model_input == b.model_input  # rendered by a replica
            assert [x.logprob for x in a.responses] == pytest.approx([x.logprob for x in b.responses], abs=1e-4)
            assert [(x.text, x.is_greedy, x.error) for x in a.responses] == [
                (x.text, x.is_greedy, x.error) for x in b.responses]
            assert a.scores == b.scores
        assert local.tasks[task].metrics == sharded.tasks[task].metrics
        assert local.tasks[task].task_fingerprint == sharded.tasks[task].task_fingerprint
    assert local.model.fingerprint == sharded.model.fingerprint


def test_a_sharded_run_on_two_nodes_equals_the_local_run(cluster: LocalRayCluster, tiny_model: Path,
                                                          tmp_path: Path) -> None:
    tasks, spec = ["arc_easy", "hellaswag"], f"hf:{tiny_model}"
    local = evalboard.evaluate(spec, tasks, limit=4, output_dir=None, cache=False)
    sharded = evalboard.evaluate(spec, tasks, limit=4, output_dir=tmp_path / "results", cache=tmp_path / "c.sqlite",
                                 executor="ray", ray_address=cluster.address, replicas=2, shard_size=3)
    _assert_same_samples(local, sharded, tasks)
    # the replicas' usage merged: a ratio is recomputed over the summed counters, not added up
    merged = sharded.usage.adapter
    assert merged["token_efficiency"] == round(merged["unique_prefix_tokens"] / merged["tokens_forwarded"], 4) <= 1
    stats = sharded.usage.adapter["executor"]
    unique = sharded.usage.unique_requests
    assert stats["replicas"] == 2 and stats["nodes"] == 2  # one CPU per node: one replica on each
    assert stats["shards"] == math.ceil(unique / 3) and stats["shards_resubmitted"] == 0
    assert sharded.usage.requests_answered_now == unique
    # the driver wrote every answer: a local rerun on that cache asks the model nothing
    rerun = evalboard.evaluate(spec, tasks, limit=4, output_dir=None, cache=tmp_path / "c.sqlite")
    assert rerun.usage.requests_answered_now == 0 and rerun.usage.cache_hits == unique
    _assert_same_samples(local, rerun, tasks)
    # a rerun on the cluster from that cache asks nothing, and still renders every model_input
    cached = evalboard.evaluate(spec, tasks, limit=4, output_dir=None, cache=tmp_path / "c.sqlite",
                                executor="ray", ray_address=cluster.address, replicas=2, shard_size=3)
    assert cached.usage.requests_answered_now == 0
    _assert_same_samples(local, cached, tasks)


def test_a_sharded_generation_equals_the_local_one(cluster: LocalRayCluster, tiny_model: Path) -> None:
    spec, options = f"hf:{tiny_model}", {"limit": 2, "max_new_tokens": 16, "output_dir": None, "cache": False}
    local = evalboard.evaluate(spec, ["gsm8k_cot"], **options)
    sharded = evalboard.evaluate(spec, ["gsm8k_cot"], executor="ray", ray_address=cluster.address, replicas=2,
                                 shard_size=1, **options)
    assert all(response.text for sample in local.samples["gsm8k_cot"] for response in sample.responses)
    _assert_same_samples(local, sharded, ["gsm8k_cot"])
    assert sharded.usage.adapter["executor"]["shards"] == 2


def _request_times(server: Any, run: Any) -> list[float]:
    server.reset_log()
    run()
    return sorted(entry.started for entry in server.log)


def test_a_remote_apis_rate_limit_is_the_runs_across_its_replicas(cluster: LocalRayCluster) -> None:
    """rpm=120 (2 a second, bursts of 2) on a remote API served from this process: over two replicas
    answering at once the API never sees more than the run's rate, and one replica left to answer
    alone gets all of it (a split limit would hold it to half: at least 11 s for 12 requests)."""
    from servers.fixtures import MODELS, make_server

    rate, burst = 2.0, 2
    with make_server("openai", api_key=None) as server:
        spec = f"openai-compatible:{server.base_url}#{MODELS['openai']},rpm=120"

        def run(shard_size: int):
            return lambda: evalboard.evaluate(spec, ["gsm8k_cot"], limit=12, max_new_tokens=8, output_dir=None,
                                              cache=False, executor="ray", ray_address=cluster.address,
                                              replicas=2, shard_size=shard_size)

        together = _request_times(server, run(6))
        assert len(together) == 12
        for first in range(12):  # no window holds more requests than the bucket lets through
            for last in range(first + 1, 12):
                assert last - first + 1 <= burst + rate * (together[last] - together[first]) + 0.5, together
        alone = _request_times(server, run(12))  # one shard: one replica answers everything
        assert len(alone) == 12 and alone[-1] - alone[0] < 8.0, alone


def _cached(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.Error:
        return 0


def _run_through_a_fault(spec: str, cache: Path, limit: int, fault: Any, join_s: float, **ray: Any) -> Any:
    """ARC-Easy on the cluster, one request a shard, while `fault()` is polled until it says it
    struck. Then nothing may be lost or asked twice, and the record must be the local run's."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["record"] = evalboard.evaluate(spec, ["arc_easy"], limit=limit, output_dir=None, cache=cache,
                                                   executor="ray", shard_size=1, **ray)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    struck = False
    deadline = time.monotonic() + 240
    while not struck and thread.is_alive() and time.monotonic() < deadline:
        struck = fault()
        time.sleep(0.005)
    thread.join(timeout=join_s)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    record = outcome["record"]
    assert struck
    stats, unique = record.usage.adapter["executor"], record.usage.unique_requests
    assert stats["shards_resubmitted"] >= 1  # the shard in flight went out again
    assert stats["shards"] == unique  # every returned shard was asked exactly once
    assert record.usage.requests_answered_now == unique and _cached(cache) == unique
    local = evalboard.evaluate(spec, ["arc_easy"], limit=limit, output_dir=None, cache=False)
    _assert_same_samples(local, record, ["arc_easy"])
    return record


def test_a_replica_killed_mid_run_loses_and_repeats_nothing(cluster: LocalRayCluster, tiny_model: Path,
                                                            tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"

    def kill_a_replica() -> bool:
        pids = cluster.replica_processes()  # this cluster's only, not another test's
        if pids and _cached(cache) >= 1:  # mid-run: some answers are in, most are not
            os.kill(pids[0], signal.SIGKILL)
            return True
        return False

    _run_through_a_fault(f"hf:{tiny_model}", cache, 12, kill_a_replica, 300, ray_address=cluster.address)


def test_a_node_lost_mid_run_leaves_its_shards_to_the_other_nodes(cluster: LocalRayCluster, tiny_model: Path,
                                                                   tmp_path: Path) -> None:
    """A third node joins; three replicas, one per node (one CPU each). That node's whole process
    group is SIGKILLed mid-run: its replica cannot be placed again (no room left), and the other two
    finish: nothing lost, nothing asked twice, the local run's record."""
    cache = tmp_path / "c.sqlite"
    node = cluster.add_worker(1)
    cluster.wait_for_nodes(3)

    def lose_the_node() -> bool:
        on_node = replica_processes([node.pid])
        if on_node and _cached(cache) >= 3:  # mid-run, with the node's replica at work
            os.killpg(node.pid, signal.SIGKILL)  # the node's raylet and agents
            for pid in on_node:  # and its workers, wherever Ray put their process group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return True
        return False

    record = _run_through_a_fault(f"hf:{tiny_model}", cache, 30, lose_the_node, 400, ray_address=cluster.address,
                                  replicas=3)
    assert record.usage.adapter["executor"]["nodes"] == 3
    # The next test gets a settled cluster: Ray has marked the lost node dead (after missed
    # heartbeats, which on a loaded machine can outlast this run), so nothing is placed on it.
    cluster.wait_for_nodes(2, exactly=True)


BOARD = """\
results: results
output: results/leaderboard/index.html
bootstrap_rounds: 20
defaults:
  limit: 3
models:
  - spec: hf:{model}
    label: tiny
  - chance:7
tasks:
  - arc_easy
  - name: hellaswag
    limit: 2
"""


# What differs between two runs of the same board made minutes apart: run ids and times, and each
# run's wall seconds in the provenance table (timings aside, the issue says).
RUN_TIMES = re.compile(rb"\d{8}-\d{6}-[\w.-]+?-[0-9a-f]{8}|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")
WALL_SECONDS = re.compile(rb'(<td>evalboard [^<]*</td>.*<td class="num">)[\d.]+(</td></tr>)')


def _timings_aside(page: bytes) -> bytes:
    return RUN_TIMES.sub(b"", WALL_SECONDS.sub(rb"\1\2", page))


def _span(record: Any) -> tuple[float, float]:
    import datetime as dt

    start = dt.datetime.fromisoformat(record.created_at).timestamp()
    return start, start + record.wall_time_s


def test_a_nightly_board_on_the_cluster_is_byte_identical_to_the_local_one(
        cluster: LocalRayCluster, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = []
    for where in ("local", "ray"):
        folder = tmp_path / where
        folder.mkdir()
        (folder / "leaderboard.yaml").write_text(BOARD.format(model=tiny_model))
        cache = str(tmp_path / f"{where}.sqlite")  # separate caches: the cluster answers everything itself
        if where == "local":
            monkeypatch.setenv("EVALBOARD_CACHE", cache)
            result = run_update(load_config(folder / "leaderboard.yaml"), log=open(os.devnull, "w"))
            assert not result.failures
        else:
            done = run_cli("leaderboard", "update", "--config", str(folder / "leaderboard.yaml"),
                           "--executor", "ray", "--ray-address", cluster.address,
                           env={"EVALBOARD_CACHE": cache, "RAY_AUTH_MODE": "disabled"})
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            assert "evaluated 4 cell(s), 0 failure(s)" in done.stdout
            # the board's two models ran at once on the cluster, not one after the other (each
            # model makes two runs, one per task's limit)
            records = evalboard.list_runs(folder / "results")
            first = {r.model.label: _span(r) for r in sorted(records, key=lambda r: r.created_at, reverse=True)}
            assert len(records) == 4 and len(first) == 2
            assert max(s for s, _ in first.values()) < min(e for _, e in first.values()), first
        pages.append((folder / "results" / "leaderboard" / "index.html").read_bytes())
    assert len(WALL_SECONDS.findall(pages[0])) == 4  # one provenance row per cell: the mask is in place
    assert _timings_aside(pages[0]) == _timings_aside(pages[1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_wrong_ray_address_is_one_line(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    done = run_cli("run", "--model", "chance:1", "--tasks", "arc_easy", "--limit", "2", "--executor", "ray",
                   "--ray-address", address, cwd=tmp_path)
    assert_one_line_error(done, f"cannot reach a Ray cluster at {address}")
    done = run_cli("run", "--model", "chance:1", "--tasks", "arc_easy", "--executor", "ray", "--ray-address", "nonsense",
                   cwd=tmp_path)
    assert_one_line_error(done, "is not HOST:PORT")


def test_without_ray_installed_the_executor_says_how_to_install_it(tmp_path: Path) -> None:
    hide_ray = ("import sys; sys.modules['ray'] = None; from evalboard.cli import main; "
                "sys.exit(main(['run', '--model', 'chance:1', '--tasks', 'arc_easy', '--limit', '2', "
                "'--executor', 'ray', '--no-cache']))")
    done = subprocess.run([sys.executable, "-c", hide_ray], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert_one_line_error(done, "pip install 'evalboard[ray]'")
