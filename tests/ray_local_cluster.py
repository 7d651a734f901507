"""A real Ray cluster on 127.0.0.1 for tests and benchmarks: a head and worker nodes, each a
`ray start --block` process group of its own (so killing one is a real node failure), small CPU
counts, no dashboard. Stopped by signalling exactly these process groups, never `ray stop` (which
would stop every Ray on the machine)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica_processes(under: Collection[int] = ()) -> list[int]:
    """Pids of the worker processes that hold evalboard model replicas (Ray titles them
    `ray::_Replica...`); with `under`, only those descended from one of those pids (one cluster's
    nodes, not another Ray on the machine)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline and cmdline[0].startswith("ray::_Replica"):
            try:
                if under and not {parent.pid for parent in process.parents()} & set(under):
                    continue
            except psutil.Error:
                continue
            found.append(process.pid)
    return found


class LocalRayCluster:
    def __init__(self, workers: int = 1, cpus_per_node: int = 1, head_cpus: int = 1) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(os.environ.get("TMPDIR", "/tmp")) / f"evalboard-ray-{self.port}"
        self.groups: list[subprocess.Popen[bytes]] = []
        # on a loaded 2-core machine a node's agents take longer than Ray's default wait for them
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_agent_register_timeout_ms": "180000",
                    "RAY_AUTH_MODE": "disabled"}
        try:
            self._start(["--head", f"--port={self.port}", f"--num-cpus={head_cpus}", "--include-dashboard=false",
                         f"--temp-dir={self.temp}"])
            self._wait_for_head()
            self.workers = [self.add_worker(cpus_per_node) for _ in range(workers)]
            self.wait_for_nodes(1 + workers)
        except BaseException:
            self.stop()
            raise

    def _start(self, args: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [str(RAY), "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env, start_new_session=True)
        self.groups.append(process)
        return process

    def replica_processes(self) -> list[int]:
        """The model replicas running on this cluster's nodes."""
        return replica_processes([process.pid for process in self.groups])

    def add_worker(self, cpus: int = 1) -> subprocess.Popen[bytes]:
        return self._start([f"--address={self.address}", f"--num-cpus={cpus}"])

    def _wait_for_head(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the Ray head on port {self.port} did not come up")

    def wait_for_nodes(self, count: int, timeout_s: float = 180, *, exactly: bool = False) -> None:
        """Until `count` nodes are alive (`exactly`: no more either, so a lost node is known to be
        dead), asked through a throwaway driver process."""
        probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-c", probe, self.address], capture_output=True, text=True,
                                  env=self.env, timeout=timeout_s)
            lines = done.stdout.strip().splitlines()
            alive = int(lines[-1]) if lines and lines[-1].isdigit() else -1
            if alive == count or (alive > count and not exactly):
                return
            time.sleep(1)
        raise RuntimeError(f"{'not exactly' if exactly else 'fewer than'} {count} Ray nodes alive at {self.address}")

    def stop(self) -> None:
        for process in reversed(self.groups):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.groups:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        time.sleep(1)
        for process in self.groups:  # whatever a node left behind in its group
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
