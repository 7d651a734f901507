"""`evalboard validate FILE...`: check task files and leaderboard configs without running anything.

Each problem is one line on stderr naming the file (and the item or key) and the fix; the exit
code is 2 when there is any. A task file is checked against the schema, then item by item with the
data available here; a leaderboard config against its schema, its model schemes and its task names.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from evalboard.errors import UserError


def _is_config(path: Path) -> bool:
    """A leaderboard config has `models:`; anything else is taken for a task file."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the task-file reader reports it
    return isinstance(raw, dict) and "models" in raw and "prompt" not in raw


def _config_problems(path: Path) -> tuple[list[str], str]:
    from evalboard.engine.nightly import load_config
    from evalboard.taskdef.registry import discover_tasks

    try:
        config = load_config(path)
        known = discover_tasks(config.include_paths)
    except UserError as exc:
        return [str(exc)], ""
    problems = []
    for index, task in enumerate(config.tasks):
        if task.name not in known:
            near = difflib.get_close_matches(task.name, list(known), n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}? " if near else ""
            problems.append(f"{path}: tasks[{index}]: unknown task {task.name}; {hint}`evalboard tasks` lists them")
    return problems, f"leaderboard config: {len(config.models)} model(s) x {len(config.tasks)} task(s)"


def _task_problems(path: Path, data_dir: Path | None) -> tuple[list[str], str]:
    from evalboard.taskdef.validation import validate_task_file

    report = validate_task_file(path, data_dir)
    if report.spec is None or report.problems:
        return report.problems, ""
    checked = report.note or f"{report.items_checked} items checked"
    return [], f"task {report.spec.name} ({report.spec.type}): {checked}"


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        if not path.is_file():
            problems, summary = [f"{path} does not exist"], ""
        elif _is_config(path):
            problems, summary = _config_problems(path)
        else:
            problems, summary = _task_problems(path, args.data_dir)
        for problem in problems:
            print(f"evalboard: error: {problem}", file=sys.stderr)
        if problems:
            failed += 1
        else:
            print(f"ok {path}: {summary}")
    if failed:
        print(f"{failed} of {len(args.files)} file(s) have problems", file=sys.stderr)
        return 2
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="check task files and leaderboard configs (one line per problem)")
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE", help="task YAML files or leaderboard configs")
    parser.add_argument("--data-dir", type=Path, default=None, help="local copies: DIR/<task>/<split>.jsonl")
    parser.set_defaults(handler=_validate)
