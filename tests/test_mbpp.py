"""MBPP: prompts and stops equal lm-eval 0.4.13's `mbpp` rendering of the same items (its own
task file, template and exemplars, through its ConfigurableTask), and completions pass or fail in
the sandbox as lm-eval's code_eval (program + asserts in one process) would judge honest ones."""

from __future__ import annotations

import datasets
import pytest
from evalboard.requests import Capabilities
from evalboard.taskdef.lm_eval_source import returned_literal, task_dir, task_file
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks, hook
from lm_eval.api.task import ConfigurableTask
from sandbox_fixtures import sandbox  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("sandbox")


@pytest.fixture(scope="module")
def task() -> PreparedTask:
    prepared = prepare_task(discover_tasks()["mbpp"], TaskOptions())
    choose_formulation(prepared, Capabilities(loglikelihood=False, generate=True, chat=False), "test")
    return prepared


def _reference(docs: list[dict]) -> ConfigurableTask:
    """lm-eval's mbpp task file as lm-eval reads it, less its pass_at_1 metric (HF evaluate's
    code_eval, which downloads its script from the Hub) and with its `!function` exemplars read."""
    config = dict(task_file(task_dir("mbpp") / "mbpp.yaml"))
    config["fewshot_config"] = {"sampler": "first_n",
                                "samples": returned_literal(task_dir("mbpp") / "utils.py", "list_fewshot_samples")}
    config["metric_list"] = [{"metric": "exact_match"}]
    rows = [{k: d[k] for k in ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list")}
            for d in docs]
    dataset = datasets.Dataset.from_list(rows)
    config["custom_dataset"] = lambda **_: datasets.DatasetDict({"test": dataset})
    return ConfigurableTask(config=config)


def test_all_500_test_problems(task):
    assert len(task.docs) == 500 and task.docs[0]["id"] == "11" and task.docs[-1]["id"] == "510"


def test_prompts_and_stops_are_lm_evals(task):
    reference = _reference(task.docs[:5])
    for doc, ref_doc in zip(task.docs[:5], reference.test_docs(), strict=True):
        assert task.requests(doc)[0].context == reference.fewshot_context(ref_doc, num_fewshot=3)
        assert task.formulation.target(doc) == reference.doc_to_target(ref_doc)
    assert task.formulation.params.stop == tuple(reference.config.generation_kwargs["until"])
    assert task.formulation.params.max_new_tokens == 256  # lm-eval's default max_gen_toks; the file sets none


def test_completions_pass_and_fail_as_code_eval_would(task):
    docs = task.docs[:6]
    wrong = "def remove_Occ(s, ch):\n    return s\n"
    cases = [
        (docs[0], docs[0]["code"], 1.0),  # the reference solution
        (docs[0], wrong, 0.0),
        (docs[0], "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n", 1.0),
        (docs[0], "def remove_Occ(s, ch)\n    return s\n", 0.0),  # a syntax error
        (docs[0], "", 0.0),
        (docs[1], "def sort_matrix(M):\n    while True:\n        pass\n", 0.0),  # never returns
        *((doc, doc["code"], 1.0) for doc in docs[2:]),
    ]
    score_batch = hook(task.spec, "score_batch")
    scores = score_batch([doc for doc, _, _ in cases], [[completion] for _, completion, _ in cases])
    assert [s["pass@1"] for s in scores] == [expected for _, _, expected in cases]
    assert scores[5]["failure_kinds"] == ["timeout"]
