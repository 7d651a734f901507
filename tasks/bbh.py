"""BIG-Bench Hard with chain of thought (lm-eval 0.4.13's `bbh_cot_fewshot`): each subtask's
description and 3 worked exemplars are read from lm-eval's own task files
(`lm_eval/tasks/bbh/cot_fewshot/<subtask>.yaml`), so the prompts are the reference's exactly.
Scoring needs no Python: the task file declares lm-eval's "get-answer" filter and exact_match."""

from __future__ import annotations

from typing import Any

from evalboard.errors import UserError
from evalboard.taskdef.lm_eval_source import task_dir, task_file


def _subtask_file(subtask: str) -> dict[str, Any]:
    path = task_dir("bbh", "cot_fewshot") / f"{subtask}.yaml"
    if not path.is_file():
        raise UserError(f"bbh_cot_fewshot: lm-eval has no task file for subtask {subtask!r} ({path})")
    return task_file(path)


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        subtask = row.get("_config") or row.get("subtask")
        if not subtask:
            raise UserError("bbh_cot_fewshot: a row names no subtask (the Hub's configs, or a `subtask` field)")
        position = seen[subtask] = seen.get(subtask, -1) + 1
        docs.append({"id": f"{subtask}/{position}", "subtask": subtask, "input": row["input"],
                     "target": row["target"], "description": _subtask_file(subtask)["description"]})
    return docs


def fewshot_examples() -> list[dict[str, Any]]:
    """Every subtask's 3 exemplars in lm-eval's order (matched to a document by `subtask`)."""
    examples = []
    for path in sorted(task_dir("bbh", "cot_fewshot").glob("[a-z]*.yaml")):
        subtask = path.stem
        for i, sample in enumerate(_subtask_file(subtask)["fewshot_config"]["samples"]):
            examples.append({"id": f"{subtask}/exemplar-{i}", "subtask": subtask, "input": sample["input"],
                             "target": sample["target"], "description": ""})
    return examples
