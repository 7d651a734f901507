"""lm-eval's own task files for the catalogue's multiple-choice tasks, redirected to local JSON of
the documents evalboard evaluates (the Hub's schema), for parity tests. Built on
lm_eval_reference (the shared helpers), one writer per task."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lm_eval_reference import _task_yaml, _write_jsonl, lm_eval_task_dir

Row = dict[str, Any]


def _write(directory: Path, name: str, lm_eval_file: str, rows: list[Row]) -> str:
    data = _write_jsonl(directory / f"{name}.jsonl", rows)
    _task_yaml(directory, name, lm_eval_task_dir() / lm_eval_file, {"test": data})
    return name


def _as_is(*keys: str) -> Callable[[Row], Row]:
    return lambda doc: {key: doc[key] for key in keys}


def _boolq_row(doc: Row) -> Row:
    """google/boolq's schema (the offline copy) as SuperGLUE's, which lm-eval's boolq reads."""
    return {"question": doc["question"], "passage": doc["passage"], "idx": int(doc["id"]),
            "label": int(doc["answer"])}


# evalboard task -> (lm-eval task file, the Hub-schema row of one of our documents)
TASKS: dict[str, tuple[str, Callable[[Row], Row]]] = {
    "winogrande": ("winogrande/default.yaml", _as_is("sentence", "option1", "option2", "answer")),
    "piqa": ("piqa/piqa.yaml", _as_is("goal", "sol1", "sol2", "label")),
    "boolq": ("super_glue/boolq/default.yaml", _boolq_row),
    "openbookqa": ("openbookqa/openbookqa.yaml", _as_is("id", "question_stem", "choices", "answerKey")),
    "sciq": ("sciq/sciq.yaml", _as_is("question", "distractor1", "distractor2", "distractor3",
                                      "correct_answer", "support")),
    "commonsense_qa": ("commonsense_qa/default.yaml",
                       _as_is("id", "question", "question_concept", "choices", "answerKey")),
    "siqa": ("siqa/siqa.yaml", _as_is("context", "question", "answerA", "answerB", "answerC", "label")),
    "truthfulqa_mc1": ("truthfulqa/truthfulqa_mc1.yaml", _as_is("question", "mc1_targets", "mc2_targets")),
    "truthfulqa_mc2": ("truthfulqa/truthfulqa_mc2.yaml", _as_is("question", "mc1_targets", "mc2_targets")),
}


# evalboard tasks that score another split than lm-eval's own task, and why (their descriptions say so)
SPLIT_DIFFERS = {"sciq": "no package ships SciQ's test split (lm-eval scores test); evalboard scores validation"}


def lm_eval_split(task: str) -> str:
    """The split lm-eval's own task file scores: its test split where it names one, else validation
    (lm-eval's `eval_docs`)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(lm_eval_task_dir() / TASKS[task][0], resolve_func=False)
    return str(config.get("test_split") or config["validation_split"])


def write_task(directory: Path, task: str, docs: list[Row]) -> str:
    """lm-eval's task for evalboard's `task`, on these documents; returns its name (ref_<task>).
    The documents are evalboard's split: one that is not the split lm-eval scores fails here,
    unless SPLIT_DIFFERS names it."""
    from evalboard.taskdef.registry import discover_tasks

    ours, theirs = discover_tasks()[task].data.split, lm_eval_split(task)
    if ours != theirs and task not in SPLIT_DIFFERS:
        raise AssertionError(f"{task} scores {ours}, but lm-eval's {TASKS[task][0]} scores {theirs}")
    lm_eval_file, to_row = TASKS[task]
    return _write(directory, f"ref_{task}", lm_eval_file, [to_row(doc) for doc in docs])


def truthfulqa_hub_rows(mc_task_json: Path) -> list[Row]:
    """TruthfulQA's v0 mc_task.json (what the Hub's `truthful_qa` multiple_choice was made from) in
    the Hub's schema: each {answer: label} dict becomes {choices: [...], labels: [...]} in key order."""
    items = json.loads(mc_task_json.read_text(encoding="utf-8"))

    def targets(mapping: dict[str, int]) -> dict[str, list[Any]]:
        return {"choices": list(mapping), "labels": list(mapping.values())}

    return [{"question": item["question"], "mc1_targets": targets(item["mc1_targets"]),
             "mc2_targets": targets(item["mc2_targets"])} for item in items]


def write_truthfulqa_data_dir(directory: Path, mc_task_json: Path) -> Path:
    """DIR/truthfulqa_mc{1,2}/validation.jsonl (the --data-dir layout); returns DIR."""
    rows = truthfulqa_hub_rows(mc_task_json)
    for task in ("truthfulqa_mc1", "truthfulqa_mc2"):
        (directory / task).mkdir(parents=True, exist_ok=True)
        _write_jsonl(directory / task / "validation.jsonl", rows)
    return directory
