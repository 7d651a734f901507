"""`evalboard tasks`: list the tasks with descriptions and item counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalboard.errors import UserError


def _details(args: argparse.Namespace) -> int:
    from evalboard.cli.task_details import describe_task
    from evalboard.taskdef.registry import discover_tasks, resolve_task_names

    specs = discover_tasks(args.include_path)
    names = resolve_task_names(args.names, specs)
    print("\n\n".join(describe_task(specs[name], args.data_dir) for name in names))
    return 0


def _list(args: argparse.Namespace) -> int:
    """One aligned row per task, printed as soon as its items are counted (the header and the
    first rows appear at once; counting reads each task's data)."""
    from evalboard.taskdef.registry import discover_tasks

    if args.names:
        return _details(args)
    specs = discover_tasks(args.include_path)
    members: dict[str, list[str]] = {}  # a group's members get one line below, not 57 rows
    for name, spec in sorted(specs.items()):
        if spec.subtask_of:
            members.setdefault(spec.subtask_of, []).append(name)
    rows = {name: (spec.type, spec.mirrors.split(" (")[0], spec.description)
            for name, spec in sorted(specs.items()) if not spec.subtask_of}
    widths = [max([len(header), *(len(cell) for cell in cells)])
              for header, cells in (("task", rows), ("type", [r[0] for r in rows.values()]),
                                    ("mirrors", [r[1] for r in rows.values()]))]

    def line(name: str, count: str, kind: str, mirrors: str, description: str) -> str:
        return (f"{name:<{widths[0]}}  {count:>7}  {kind:<{widths[1]}}  {mirrors:<{widths[2]}}  "
                f"{description}").rstrip()

    print(line("task", "items", "type", "mirrors", "description"), flush=True)
    from evalboard.taskdef.prepared import TaskOptions, prepare_task

    for name, (kind, mirrors, description) in rows.items():
        try:
            count = str(len(prepare_task(specs[name], TaskOptions(num_fewshot=0, data_source="offline")).docs))
        except UserError:
            count = "n/a"  # data not installed here; `evalboard run` says what to install
        print(line(name, count, kind, mirrors, description), flush=True)
    for group, names in members.items():
        print(f"{group} is a group of {len(names)} tasks, each its own: {names[0]}, {names[1]}, ... {names[-1]} "
              f"(select them with --tasks '{group}_*'; --limit N on {group} takes N of each)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="list available tasks, or show the details of some (tasks NAME...)")
    parser.add_argument("names", nargs="*", metavar="NAME", help="show these tasks in full")
    parser.add_argument("--include-path", type=Path, action="append", default=[])
    parser.add_argument("--data-dir", type=Path, default=None, help="local copies: DIR/<task>/<split>.jsonl")
    parser.set_defaults(handler=_list)
