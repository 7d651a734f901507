"""gsm8k's 5-shot prompts are lm-eval 0.4.13's own: its `gsm8k` task (its file, its default
sampler seeded 1234 as lm-eval's evaluator seeds it) on the same test items, with the train split
(where its examples come from) read from ../shared/data/gsm8k on both sides."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks
from evalboard.tasks import gsm8k
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

TRAIN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gsm8k" / "train.jsonl"
pytestmark = pytest.mark.skipif(not TRAIN.is_file(), reason=(
    f"GSM8K's train split is not at {TRAIN} (../shared/data is absent); no package ships it and the Hub "
    "is unreachable here"))


def _prompts(limit: int, data_dir: Path) -> list[str]:
    task = prepare_task(discover_tasks()["gsm8k"], TaskOptions(limit=limit, data_dir=data_dir))
    from evalboard.requests import Capabilities
    from evalboard.taskdef.prepared import choose_formulation

    choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=False), "test")
    return [task.requests(doc)[0].context for doc in task.docs]


def test_five_shot_prompts_are_lm_evals(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").symlink_to(TRAIN)
    ours = _prompts(6, tmp_path)
    test_docs = prepare_task(discover_tasks()["gsm8k"], TaskOptions(limit=6, num_fewshot=0)).docs
    train = [json.loads(line) for line in TRAIN.read_text().splitlines() if line.strip()]
    config = load_yaml(os.path.join(gsm8k.lm_eval_task_dir(), "gsm8k.yaml"))
    test = datasets.Dataset.from_list([{"question": d["question"], "answer": d["answer"]} for d in test_docs])
    config["custom_dataset"] = lambda **_: datasets.DatasetDict({"test": test, "train": datasets.Dataset.from_list(train)})
    reference = ConfigurableTask(config=config)
    reference.set_fewshot_seed(1234)  # what lm-eval's simple_evaluate does (fewshot_random_seed)
    expected = [reference.fewshot_context(doc, num_fewshot=5) for doc in reference.test_docs()]
    assert ours == expected
    assert len({p.split("\n\n")[0] for p in ours}) == len(ours)  # examples differ between items
    # the draws follow the split's order, not --limit: the 4th item's prompt is the same alone
    assert _prompts(4, tmp_path)[3] == ours[3]
