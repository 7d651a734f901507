"""Checking a task file the way a run would use it, item by item, before any model is loaded: every
document of the split (and of the few-shot pool) is turned into its requests and its gold answer in
each of the task's formulations, so a bad `choices:` expression, a missing answer field or an answer
out of range is found here, with the file, the item and the fix, rather than in the middle of a run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from evalboard.errors import UserError
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.prompting import PromptStyle
from evalboard.taskdef.registry import hook
from evalboard.taskdef.shapes import ShapeContext, shapes_for
from evalboard.taskdef.spec import TaskSpec, task_file_problems

# Past this many, further items with problems are counted rather than listed.
MAX_ITEM_PROBLEMS = 5


@dataclass
class FileReport:
    """What validating one task file found: its problems (one line each) and what was checked."""

    path: Path
    spec: TaskSpec | None = None
    problems: list[str] = field(default_factory=list)
    items_checked: int = 0
    note: str = ""  # why the items were not checked, when they could not be


def _formulations(spec: TaskSpec) -> list[type]:
    shapes = shapes_for(spec.type)
    return [s for s in shapes if spec.formulations is None or s.formulation in spec.formulations] or shapes


def item_problems(spec: TaskSpec, data_dir: Path | None = None) -> tuple[int, list[str], str]:
    """(items checked, problems, note): every item in every formulation of the task, with the data
    found here without a network (the task's data_files, --data-dir, an installed package)."""
    try:
        task = prepare_task(spec, TaskOptions(num_fewshot=0, data_source="offline", data_dir=data_dir))
    except UserError as exc:
        if spec.data.data_files or data_dir is not None:
            return 0, [str(exc)], ""
        return 0, [], f"items not checked: {exc}"
    docs = list(task.docs)
    if spec.data.fewshot_split and spec.data.fewshot_split != spec.data.split:
        try:
            docs += prepare_task(spec, TaskOptions(num_fewshot=1, data_source="offline", data_dir=data_dir)).fewshot_pool
        except UserError:
            pass  # the few-shot split is not here; a run that needs it says so
    problems: list[str] = []
    bad_items: set[str] = set()
    repeats: dict[str, list[int]] = {}  # the same problem on other items: [its line, how many more]
    for shape_class in _formulations(spec):
        try:
            shape = shape_class(ShapeContext(spec, PromptStyle(), hook=lambda name: hook(spec, name)))
            shape.check_primary_metric()
        except UserError as exc:
            problems.append(str(exc))
            continue
        for doc in docs:
            try:
                shape.requests(doc, [])
                shape.target(doc)
            except UserError as exc:
                if str(doc["id"]) in bad_items:
                    continue  # one problem per item (the other formulation trips on the same)
                bad_items.add(str(doc["id"]))
                same = re.sub(r"\bdoc \S+", "doc", str(exc))
                if same in repeats:
                    repeats[same][1] += 1
                elif len(problems) < MAX_ITEM_PROBLEMS:
                    repeats[same] = [len(problems), 0]
                    problems.append(str(exc))
    for line, more in repeats.values():
        if more:
            problems[line] += f" (and the same on {more} more item{'s' if more > 1 else ''})"
    listed = len(repeats) + sum(more for _, more in repeats.values())
    if len(bad_items) > listed:
        problems.append(f"task file {spec.source_file}: {len(bad_items) - listed} more item(s) with "
                        f"problems like those above")
    return len(docs), problems, ""


def validate_task_file(path: Path, data_dir: Path | None = None) -> FileReport:
    spec, problems = task_file_problems(path)
    report = FileReport(path, spec, problems)
    if spec is not None and not problems:
        report.items_checked, report.problems, report.note = item_problems(spec, data_dir)
    return report
