"""Time the leaderboard's ratings at full scale: Bradley–Terry per task plus overall, with the item
bootstrap, on simulated per-item scores (by default 100 models × 6 tasks × 5,000 items, 3M scores,
1,000 rounds; docs/ratings.md has the figures).

    python benchmarks/ratings_scale.py [--models 100] [--items 5000] [--tasks 6] [--rounds 1000] [--continuous]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from evalboard.leaderboard.ratings import RatingOptions, leaderboard_ratings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from simulated_scores import simulated  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--continuous", action="store_true", help="scores in [0, 1] instead of 0/1")
    args = parser.parse_args(argv)

    frame = simulated(args.models, args.items, tasks=args.tasks, seed=15, binary=not args.continuous)
    start, cpu = time.perf_counter(), time.process_time()
    table = leaderboard_ratings(frame, RatingOptions(rounds=args.rounds, seed=0))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if len(table) != (args.tasks + 1) * args.models:  # per task + overall, every model
        print(f"unexpected ratings table: {len(table)} rows", file=sys.stderr)
        return 1
    print(f"ratings: {args.models} models x {args.tasks} tasks x {args.items} items ({len(frame):,} scores), "
          f"{args.rounds} bootstrap rounds, per task + overall: {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(json.dumps({"models": args.models, "tasks": args.tasks, "items": args.items, "rounds": args.rounds,
                      "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
