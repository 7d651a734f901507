"""lm-eval's own Open LLM Leaderboard v2 task files (GPQA, MMLU-Pro, MuSR, BBH multiple choice),
redirected to local JSON of the items evalboard evaluates, for parity tests; and the local copies
(`--data-dir` layout) made from ../shared/data. Built on lm_eval_reference's helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lm_eval_reference import _write_jsonl, lm_eval_task_dir

Row = dict[str, Any]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LEADERBOARD = "leaderboard"
GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
MUSR_FILES = {"murder_mysteries": "small_murder_mystery.json", "object_placements": "small_object_placements.json",
              "team_allocation": "small_team_allocation.json"}


def _yaml(directory: Path, name: str, include: Path, files: dict[str, Path], splits: str) -> str:
    data_files = "\n".join(f"    {split}: {path}" for split, path in files.items())
    (directory / f"{name}.yaml").write_text(
        f"include: {include}\ntask: {name}\ntag: []\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n{data_files}\n{splits}", encoding="utf-8")
    return name


def write_gpqa(directory: Path, raw_rows: list[Row], name: str = "ref_gpqa") -> str:
    """GPQA's raw rows (before any shuffle): lm-eval's process_docs shuffles them itself. The split
    layout stays lm-eval's (train is both the few-shot and the evaluated split), so process_docs
    runs in the same order as in the real task."""
    data = _write_jsonl(directory / f"{name}.jsonl", [{k: row[k] for k in GPQA_COLUMNS} for row in raw_rows])
    return _yaml(directory, name, lm_eval_task_dir() / LEADERBOARD / "gpqa" / "_template_yaml", {"train": data},
                 "training_split: train\nvalidation_split: train\ntest_split: null\n")


def write_mmlu_pro(directory: Path, test_rows: list[Row], validation_rows: list[Row], name: str = "ref_mmlu_pro") -> str:
    keep = ("question_id", "question", "options", "answer", "answer_index", "category")
    test = _write_jsonl(directory / f"{name}_test.jsonl", [{k: r[k] for k in keep} for r in test_rows])
    dev = _write_jsonl(directory / f"{name}_validation.jsonl", [{k: r[k] for k in keep} for r in validation_rows])
    return _yaml(directory, name, lm_eval_task_dir() / LEADERBOARD / "mmlu_pro" / "mmlu_pro.yaml",
                 {"test": test, "validation": dev}, "test_split: test\nfewshot_split: validation\n")


def write_musr(directory: Path, subtask: str, rows: list[Row]) -> str:
    data = _write_jsonl(directory / f"ref_musr_{subtask}.jsonl", rows)
    return _yaml(directory, f"ref_musr_{subtask}", lm_eval_task_dir() / LEADERBOARD / "musr" / "_template_yaml",
                 {"test": data}, "test_split: test\n")


def write_bbh(directory: Path, subtask: str, rows: list[Row]) -> str:
    data = _write_jsonl(directory / f"ref_bbh_{subtask}.jsonl", [{"input": r["input"], "target": r["target"]} for r in rows])
    return _yaml(directory, f"ref_bbh_{subtask}", lm_eval_task_dir() / LEADERBOARD / "bbh_mc" / f"{subtask}.yaml",
                 {"test": data}, "test_split: test\n")


def musr_hub_rows(subtask: str) -> list[Row]:
    """MuSR's viewer samples (the source repo's raw format) in the Hub's schema, one row per
    question: `context` is the Hub's `narrative`, `choices` the text of a Python list."""
    narratives = json.loads((SHARED_DATA / "musr" / "viewer_samples" / MUSR_FILES[subtask]).read_text(encoding="utf-8"))
    return [{"narrative": item["context"], "question": q["question"], "choices": str(q["choices"]),
             "answer_index": q["answer"], "answer_choice": q["choices"][q["answer"]]}
            for item in narratives for q in item["questions"]]


def link_data_dir(directory: Path) -> Path:
    """DIR/<task>/<split>.* for the v2 tasks whose items ../shared/data holds (MMLU-Pro's Hub
    parquet files, BBH's task files, MuSR's samples converted); returns DIR."""
    def place(task: str, split_file: str, source: Path | None = None, rows: list[Row] | None = None) -> None:
        (directory / task).mkdir(parents=True, exist_ok=True)
        if source is not None:
            (directory / task / split_file).symlink_to(source)
        else:
            _write_jsonl(directory / task / split_file, rows or [])

    for split in ("test", "validation"):
        place("leaderboard_mmlu_pro", f"{split}.parquet", SHARED_DATA / "mmlu_pro" / f"{split}-00000-of-00001.parquet")
    for path in sorted((lm_eval_task_dir() / LEADERBOARD / "bbh_mc").glob("[!_]*.yaml")):
        place(f"leaderboard_bbh_{path.stem}", "test.jsonl", SHARED_DATA / "bbh" / "bbh" / f"{path.stem}.jsonl")
    for subtask in MUSR_FILES:
        place(f"leaderboard_musr_{subtask}", "test.jsonl", rows=musr_hub_rows(subtask))
    return directory


def write_with_train(directory: Path, name: str, lm_eval_file: str, eval_split: str, eval_rows: list[Row],
                     train_rows: list[Row]) -> str:
    """lm-eval's task (its own few-shot sampler drawing from `train`) on these rows, with the
    evaluated split where its file has it (`test` for ARC, `validation` for HellaSwag/Winogrande)."""
    files = {"train": _write_jsonl(directory / f"{name}_train.jsonl", train_rows),
             eval_split: _write_jsonl(directory / f"{name}_{eval_split}.jsonl", eval_rows)}
    splits = "training_split: train\n" + "".join(
        f"{key}_split: {eval_split if key == eval_split else 'null'}\n" for key in ("validation", "test"))
    return _yaml(directory, name, lm_eval_task_dir() / lm_eval_file, files, splits)


def arc_hub_rows(path: Path) -> list[Row]:
    """AI2's ARC release (question.stem, question.choices) in the Hub's schema."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        choices = item["question"]["choices"]
        rows.append({"id": item["id"], "question": item["question"]["stem"], "answerKey": item["answerKey"],
                     "choices": {"text": [c["text"] for c in choices], "label": [c["label"] for c in choices]}})
    return rows
