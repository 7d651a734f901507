"""Time `evalboard leaderboard build` on a large synthetic store.

Default: 100 models × 6 tasks at full item counts (ARC-E 2376, ARC-C 1172, HellaSwag 10042,
MMLU 14042, GSM8K 1319, HumanEval 164: 29,115 items per model, 2.9 M sample lines) with 1,000
bootstrap rounds. The store is generated once (tests/synthetic_runs.py) and reused when it exists.
The first build runs with an empty per-item score cache (every samples file parsed: a cold
build); later builds read the cache, like a nightly rebuild where only new runs are parsed.

    python benchmarks/leaderboard_build.py [--models 100] [--rounds 1000] [--store DIR] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from evalboard.leaderboard.build import build_leaderboard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_runs import FULL_TASKS, model_zoo, write_store  # noqa: E402


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--store", type=Path, default=None, help="reuse/keep the synthetic store here")
    parser.add_argument("--repeat", type=int, default=2, help="builds to time (the first reads files cold-ish)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full item counts")
    args = parser.parse_args(argv)

    store = args.store or Path(tempfile.mkdtemp(prefix="evalboard-lb-bench-"))
    tasks = {name: max(2, int(n * args.scale)) for name, n in FULL_TASKS.items()}
    marker = store / ".synthetic.json"
    wanted = {"models": args.models, "tasks": tasks}
    if not (marker.is_file() and json.loads(marker.read_text()) == wanted):
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        clock = time.perf_counter()
        write_store(store, model_zoo(args.models), tasks)
        marker.write_text(json.dumps(wanted))
        print(f"generated {args.models} runs × {len(tasks)} tasks ({sum(tasks.values()):,} items per model) "
              f"in {time.perf_counter() - clock:.1f}s; store {_size(store) / 1e9:.2f} GB at {store}")
    output = Path(tempfile.mkdtemp(prefix="evalboard-lb-site-")) / "index.html"
    os.environ["EVALBOARD_HOME"] = str(output.parent / "home")  # an empty score cache: build 1 is cold
    results = []
    for k in range(args.repeat):
        clock = time.perf_counter()
        report = build_leaderboard(store, output, rounds=args.rounds, seed=0)
        total = time.perf_counter() - clock
        results.append(total)
        parts = ", ".join(f"{name} {value:.2f}" for name, value in report.timings.items())
        kind = "cold" if k == 0 else "warm"
        print(f"build {k + 1} ({kind}): {total:.2f}s ({parts}); {report.models} models, {report.columns} columns, "
              f"{report.rated_items:,} rated item scores; page {output.stat().st_size / 1e6:.1f} MB")
    print(json.dumps({"models": args.models, "tasks": tasks, "rounds": args.rounds,
                      "build_seconds": [round(r, 2) for r in results]}))
    shutil.rmtree(output.parent, ignore_errors=True)
    if args.store is None:
        shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
