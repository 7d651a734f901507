"""MATH tasks (minerva_math, minerva_math500, leaderboard_math_hard) against lm-eval 0.4.13 itself:
lm-eval builds each task from its installed YAML file (its own process_docs, prompt, few-shot
exemplars and process_results, hence its own normalisation, sympy equivalence and math-verify
calls), reading our documents from memory; both sides get the same responses."""

from __future__ import annotations

import functools
import os

import datasets
import pytest
from evalboard.requests import Capabilities
from evalboard.taskdef.lm_eval_source import task_dir
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from evalboard.taskdef.scorers.math_answers import normalise_answer, within_time_limit
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

# our task -> lm-eval's file for one of its subjects (all subjects share the prompt and scoring)
LM_EVAL_FILES = {
    "minerva_math": ("minerva_math", "minerva_math_algebra.yaml"),
    "minerva_math500": ("minerva_math", "minerva_math500.yaml"),
    "leaderboard_math_hard": ("leaderboard/math", "math_algebra.yaml"),
}
SYNTHETIC = [  # golds in the shapes that trip normalisation up
    "So the answer is $\\boxed{\\frac{1}{2}}$.",
    "Adding, we get $\\boxed{1,000}$ dollars.",
    "The pair is $\\boxed{(1,2)}$.",
    "The interval is $\\boxed{[2,5)}$.",
    "It is $\\boxed{5\\text{ cm}}$ long.",
    "The angle is $\\boxed{30^\\circ}$.",
    "First $\\boxed{3}$, then finally $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.",
    "So $x = \\boxed{\\sqrt[3]{2}}$.",
]
RESPONSES = [
    "",
    "   ",
    "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
    "Final Answer: The final answer is $0.5$. I hope it is correct.",
    "Final Answer: The final answer is $\\dfrac12$. I hope it is correct.",
    "We compute $\\boxed{2}$ and then $\\boxed{0.5}$.\nFinal Answer: The final answer is $0.5$. I hope",
    "Final Answer: The final answer is $1,000$. I hope it is correct.",
    "Final Answer: The final answer is $1000$.",
    "Final Answer: The final answer is $(1,2)$. I hope it is correct.",
    "Final Answer: The final answer is $[2,5)$. I hope it is correct.",
    "Final Answer: The final answer is $5$ cm. I hope it is correct.",
    "Final Answer: The final answer is $30^\\circ$. I hope it is correct.",
    "Final Answer: The final answer is $\\left( 3, \\frac{\\pi}{2} \\right)$. I hope it is correct.",
    "Final Answer: The final answer is $\\sqrt[3]{2}$. I hope it is correct.",
    "Final Answer: The final answer is $x = 2$. I hope it is correct.",
    "The answer is \\boxed{2}.",
    "Let me think. First, $3+4=7$, so we have $\\frac{7}{",  # cut off by max_new_tokens
    "Final Answer: The final answer is $\\frac{7}{",
]


def _docs(task: str, count: int) -> list[dict]:
    prepared = prepare_task(discover_tasks()[task], TaskOptions(limit=count))
    return prepared.docs


def _hub_row(doc: dict) -> dict:
    return {"problem": doc["problem"], "solution": doc["solution"], "level": doc["level"] or "Level 5",
            "type": "Algebra"}


def _ours(task: str, docs: list[dict]):
    prepared = prepare_task(discover_tasks()[task], TaskOptions(limit=1))
    prepared.docs = docs
    choose_formulation(prepared, Capabilities(loglikelihood=False, generate=True, chat=False), "test")
    return prepared


def _lm_eval(task: str, rows: list[dict]) -> ConfigurableTask:
    folder, name = LM_EVAL_FILES[task]
    config = load_yaml(os.path.join(task_dir(*folder.split("/")), name))
    if "include" in config:  # minerva_math500 includes the algebra file
        base = load_yaml(os.path.join(task_dir(*folder.split("/")), config.pop("include")))
        config = {**base, **config}
    dataset = datasets.Dataset.from_list(rows)
    config["custom_dataset"] = lambda **_: datasets.DatasetDict({"test": dataset, "train": dataset})
    return ConfigurableTask(config=config)


@functools.cache
def _pair(task: str):
    real = _docs(task, 3)
    synthetic = [dict(real[0], id=f"synthetic/{i}", solution=s) for i, s in enumerate(SYNTHETIC)]
    ours = _ours(task, real)
    to_docs = ours.formulation.context.hook("to_docs")
    synthetic = to_docs([dict(_hub_row(d), _config="algebra") for d in synthetic], "hub")
    docs = real + synthetic
    return task, ours, _lm_eval(task, [_hub_row(d) for d in docs]), docs


# the published sizes: MATH's test split per subject (all levels; Level 5 alone) and MATH-500
ITEMS = {
    "minerva_math": {"algebra": 1187, "counting_and_probability": 474, "geometry": 479, "intermediate_algebra": 903,
                     "number_theory": 540, "prealgebra": 871, "precalculus": 546},
    "leaderboard_math_hard": {"algebra": 307, "counting_and_probability": 123, "geometry": 132,
                              "intermediate_algebra": 280, "number_theory": 154, "prealgebra": 193, "precalculus": 135},
    "minerva_math500": None,
}


@pytest.mark.parametrize(("task", "total"), [("minerva_math", 5000), ("leaderboard_math_hard", 1324), ("minerva_math500", 500)])
def test_every_item_and_subject_is_there(task, total):
    docs = prepare_task(discover_tasks()[task], TaskOptions()).docs
    assert len(docs) == len({d["id"] for d in docs}) == total
    per_subject = ITEMS[task]
    if per_subject is not None:
        assert sum(per_subject.values()) == total
        assert {s: sum(d["subject"] == s for d in docs) for s in per_subject} == per_subject


@pytest.mark.parametrize("task", list(LM_EVAL_FILES))
def test_prompts_and_stops_are_lm_evals(task):
    task, ours, reference, docs = _pair(task)
    ref_docs = list(reference.test_docs())
    for doc, ref_doc in zip(docs[:3], ref_docs[:3], strict=True):
        request = ours.requests(doc)[0]
        assert request.context == reference.fewshot_context(ref_doc, num_fewshot=4), (task, doc["id"])
    kwargs = reference.config.generation_kwargs
    assert ours.formulation.params.stop == tuple(kwargs["until"])
    assert ours.formulation.params.max_new_tokens == kwargs.get("max_gen_toks", 256)


# which responses each synthetic gold is scored against (besides its own solution)
NEAR = {1: (6, 7), 2: (8,), 3: (9,), 4: (10,), 5: (11,), 6: (12,), 7: (13,)}


def _pairs(docs: list[dict]) -> list[tuple[int, str]]:
    """Every response against the \\frac{1}{2} gold; each other gold against its own solution, the
    responses written in its shape and an empty one (sympy takes ~0.4 s per comparison)."""
    first = len(docs) - len(SYNTHETIC)
    pairs = [(first, response) for response in RESPONSES]
    for index, doc in enumerate(docs):
        near = NEAR.get(index - first, ())
        pairs += [(index, doc["solution"]), *((index, RESPONSES[i]) for i in near)]
    return [*pairs, (0, RESPONSES[0])]


# minerva_math500 is minerva_math's scoring on other items (its prompts are checked above)
@pytest.mark.parametrize("task", ["minerva_math", "leaderboard_math_hard"])
def test_scores_are_lm_evals(task):
    task, ours, reference, docs = _pair(task)
    ref_docs = list(reference.test_docs())
    assert [d["answer"] for d in ref_docs] == [d["answer"] for d in docs]
    outcomes: dict[str, set] = {}
    for index, response in _pairs(docs):
        ours_scores = ours.formulation.scorer(docs[index], [response])
        expected = reference.process_results(ref_docs[index], [response])
        got = {key: ours_scores[key] for key in expected}
        assert got == expected, (task, docs[index]["id"], response)
        for key, value in expected.items():
            outcomes.setdefault(key, set()).add(value)
    assert all(values == {0, 1} for values in outcomes.values()), outcomes  # both outcomes exercised


def test_normalisation_lists_are_lm_evals():
    """Our two normalisers agree with lm-eval's on strings built from every listed unit and word."""
    import importlib.util

    pieces = ["5 cm", "\\left( 3, \\pi \\right)", "1,000", "0,1", "\\sqrt[3]8", "\\fracab", "x = \\$5",
              "\\text{ ways}", "30^{\\circ}", "\\boxed{7}", "\\mbox{ and } 2", "10 dollars", "\\;3{,}000"]
    for folder, revised in (("minerva_math", True), ("leaderboard/math", False)):
        spec = importlib.util.spec_from_file_location(f"_ref_{revised}", task_dir(*folder.split("/")) / "utils.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        words = [*module.REMOVED_EXPRESSIONS, *(a for a, _ in module.SUBSTITUTIONS)]
        for text in [*pieces, *(f"2 {w} 3" for w in words), *(f"$x{w}$" for w in words)]:
            assert normalise_answer(text, revised=revised) == module.normalize_final_answer(text), (revised, text)


def _slow() -> bool:
    import time

    time.sleep(5)
    return True


def test_a_comparison_past_its_time_limit_is_not_equal():
    import threading
    import time

    began = time.perf_counter()
    assert within_time_limit(0.2, False, _slow) is False
    results = []
    worker = threading.Thread(target=lambda: results.append(within_time_limit(0.2, False, _slow)))
    worker.start()
    worker.join()
    assert results == [False]
    assert time.perf_counter() - began < 4
