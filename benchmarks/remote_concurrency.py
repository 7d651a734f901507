"""How close does the remote runner get to the ideal time? N requests to a local OpenAI-protocol
server that answers each after a fixed latency, through the real `openai` client and the
`openai:` adapter, at several concurrency limits; ideal = ceil(N / C) * latency.

    python benchmarks/remote_concurrency.py                      # server in its own process
    python benchmarks/remote_concurrency.py --in-process --repeat 5
    python benchmarks/remote_concurrency.py --concurrency 1 8 32 64 --requests 200 --latency 0.2

With `--in-process` the server shares the client's interpreter (as in tests/test_remote.py), so
its CPU time competes with the client's for the GIL; by default it runs in a child process, like
a real API would.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from evalboard.requests import GenerateRequest, GenerationParams  # noqa: E402
from servers import OpenAIServer  # noqa: E402
from servers.fixtures import KEYS, make_adapter  # noqa: E402

_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from servers.fixtures import make_server
server = make_server("openai")
server.start()
server.latency_s = {latency}
print(server.base_url, flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""


def one_run(url: str, concurrency: int, n: int) -> tuple[float, float]:
    """(wall seconds, client CPU seconds per request) for n requests at this concurrency."""
    monkeypatch = pytest.MonkeyPatch()
    adapter = make_adapter(
        "openai", None, monkeypatch, url=url, concurrency=concurrency, max_concurrency=concurrency
    )
    try:
        params = GenerationParams(max_new_tokens=16)
        adapter.generate(
            [GenerateRequest(f"warm-up {i}", params) for i in range(concurrency)], lambda i, r: None
        )
        requests = [GenerateRequest(f"prompt {i}", params) for i in range(n)]
        failures: list[int] = []
        started, cpu = time.perf_counter(), time.process_time()
        adapter.generate(requests, lambda i, r: failures.append(i) if r.error else None)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if failures:
            raise RuntimeError(f"{len(failures)} requests failed")
        return elapsed, cpu / n
    finally:
        adapter.close()
        monkeypatch.undo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()

    child = None
    if args.in_process:
        server = OpenAIServer(api_key=KEYS["openai"], models=("gpt-4o-mini",))
        server.start()
        server.latency_s = args.latency
        url = server.base_url
    else:
        code = _CHILD.format(tests=str(ROOT / "tests"), latency=args.latency)
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        url = child.stdout.readline().strip()
    print(
        f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}; server "
        f"{'in this process' if args.in_process else 'in a child process'}"
    )
    try:
        for concurrency in args.concurrency:
            n = args.requests if concurrency > 1 else max(5, args.requests // 20)
            ideal = math.ceil(n / concurrency) * args.latency
            runs = [one_run(url, concurrency, n) for _ in range(args.repeat)]
            times = [wall for wall, _ in runs]
            ratios = [t / ideal for t in times]
            cpu_ms = statistics.median(cpu for _, cpu in runs) * 1000
            print(
                f"C={concurrency:>3} N={n:>4}: ideal {ideal:6.2f}s, "
                f"median {statistics.median(times):6.2f}s, "
                f"ratio median {statistics.median(ratios):.3f} (best {min(ratios):.3f}, "
                f"worst {max(ratios):.3f}); client CPU {cpu_ms:.1f} ms/request",
                flush=True,
            )
    finally:
        if child is not None:
            child.stdin.close()
            child.wait(timeout=15)
        else:
            server.stop()


if __name__ == "__main__":
    main()
