"""bbh_cot_fewshot against lm-eval 0.4.13 itself: lm-eval builds each subtask from its installed
task file (its prompt, description, 3 exemplars, stop sequences, "get-answer" filter and
exact_match), reading the BIG-Bench-Hard items (../shared/data/bbh) from memory; our side is the
task file and its hook alone, reading the same items through --data-dir."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import datasets
import pytest
from evalboard.requests import Capabilities, Response
from evalboard.taskdef.lm_eval_source import task_dir
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

BBH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbh"
KEY = "exact_match,get-answer"
SUBTASKS = sorted(p.stem for p in (BBH / "bbh").glob("*.jsonl"))
pytestmark = pytest.mark.skipif(not (BBH / "bbh").is_dir(), reason=(
    f"BIG-Bench-Hard's items are not at {BBH / 'bbh'} (../shared/data is absent); no package ships them "
    "and the Hub is unreachable here"))
TRICKY = [
    "",
    "So the answer is (A).",
    "So the answer is (A)",  # no full stop: the filter drops the last character anyway
    "So the answer is A.",
    "so the answer is (A).",
    "So the answer is (B). So the answer is (A).",
    "Let's see. A is left of B, and then",  # cut off by max_new_tokens inside the chain of thought
    "So the answer is True.",
    "So the answer is False.",
    "So the answer is true.",
    "So the answer is 24.",
    "So the answer is 24.0.",
    "So the answer is valid.",
    "So the answer is Yes.",
    "So the answer is ] ].",
    "the answer is  (A).",
    "The answer is (A).\n",
]


@functools.cache
def _data_dir(tmp: str) -> Path:
    root = Path(tmp) / "bbh_cot_fewshot"
    for subtask in SUBTASKS:
        (root / subtask).mkdir(parents=True, exist_ok=True)
        (root / subtask / "test.jsonl").symlink_to(BBH / "bbh" / f"{subtask}.jsonl")
    return Path(tmp)


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> PreparedTask:
    task = prepare_task(discover_tasks()["bbh_cot_fewshot"],
                        TaskOptions(data_dir=_data_dir(str(tmp_path_factory.mktemp("bbh")))))
    choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=False), "test")
    return task


def _reference(subtask: str) -> ConfigurableTask:
    folder = task_dir("bbh", "cot_fewshot")
    config = load_yaml(os.path.join(folder, f"{subtask}.yaml"))
    rows = [json.loads(line) for line in (BBH / "bbh" / f"{subtask}.jsonl").read_text().splitlines() if line.strip()]
    dataset = datasets.Dataset.from_list(rows)
    config["custom_dataset"] = lambda **_: datasets.DatasetDict({"test": dataset})
    return ConfigurableTask(config=config)


def test_all_items_of_all_27_subtasks(ours):
    assert len(SUBTASKS) == 27 and len(ours.docs) == 6511
    assert len({doc["subtask"] for doc in ours.docs}) == 27


@pytest.mark.parametrize("subtask", SUBTASKS)
def test_prompts_and_stops_are_lm_evals(ours, subtask):
    reference = _reference(subtask)
    docs = [doc for doc in ours.docs if doc["subtask"] == subtask]
    ref_docs = list(reference.test_docs())
    assert len(docs) == len(ref_docs)
    for doc, ref_doc in list(zip(docs, ref_docs))[:2]:
        assert ours.requests(doc)[0].context == reference.fewshot_context(ref_doc, num_fewshot=3)
    assert ours.formulation.params.stop == tuple(reference.config.generation_kwargs["until"])
    assert ours.formulation.params.max_new_tokens == reference.config.generation_kwargs["max_gen_toks"]


def test_exemplars_are_the_bbh_repositorys_cot_prompts(ours):
    """lm-eval's exemplars (what we read) are BIG-Bench-Hard's own CoT prompt files, word for word."""
    for subtask in SUBTASKS:
        doc = next(d for d in ours.docs if d["subtask"] == subtask)
        prefix = ours.requests(doc)[0].context.rsplit("Q: ", 1)[0]
        original = (BBH / "cot-prompts" / f"{subtask}.txt").read_text(encoding="utf-8").split("-----\n", 1)[1]
        assert " ".join(prefix.split()) == " ".join(original.split()), subtask


def test_answers_and_scores_are_lm_evals(ours):
    picked = ["boolean_expressions", "date_understanding", "multistep_arithmetic_two", "formal_fallacies", "dyck_languages"]
    for subtask in picked:
        reference = _reference(subtask)
        ref_doc = list(reference.test_docs())[0]
        doc = next(d for d in ours.docs if d["subtask"] == subtask)
        responses = [*TRICKY, f"So the answer is {doc['target']}."]
        instances = [Instance("generate_until", ref_doc, ("", {}), 0, metadata=(subtask, i, 1), resps=[r])
                     for i, r in enumerate(responses)]
        for ensemble in reference._filters:
            ensemble.apply(instances)
        for response, instance in zip(responses, instances):
            filtered = dict(instance.filtered_resps)
            expected = {f"{m},{name}": v for name, answer in filtered.items()
                        for m, v in reference.process_results(ref_doc, [answer]).items()}
            assert {k: answers[0] for k, answers in ours.formulation.filtered([response]).items()} == filtered
            assert ours.formulation.score(doc, [Response(text=response)]) == expected, (subtask, response)
        assert ours.formulation.score(doc, [Response(text=responses[-1])])[KEY] == 1.0


def test_each_subtask_is_an_lm_eval_named_task_reading_the_groups_folder(ours, tmp_path_factory) -> None:
    specs = discover_tasks()
    members = sorted(name for name, spec in specs.items() if spec.subtask_of == "bbh_cot_fewshot")
    assert members == [f"bbh_cot_fewshot_{subtask}" for subtask in SUBTASKS]
    # the member reads DIR/bbh_cot_fewshot/navigate/test.jsonl, the group's local layout
    navigate = prepare_task(specs["bbh_cot_fewshot_navigate"],
                            TaskOptions(limit=5, data_dir=_data_dir(str(tmp_path_factory.mktemp("bbh")))))
    choose_formulation(navigate, Capabilities(loglikelihood=False, generate=True, chat=False), "test")
    in_group = [doc for doc in ours.docs if doc["subtask"] == "navigate"][:5]
    assert navigate.docs == in_group and len(in_group) == 5
    assert [navigate.requests(doc) for doc in navigate.docs] == [ours.requests(doc) for doc in in_group]
