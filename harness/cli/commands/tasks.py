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
    from evalboard.taskdef.prepared import TaskOptions, prepare_task
    from evalboard.taskdef.registry import discover_tasks

    if args.names:
        return _details(args)
    specs = discover_tasks(args.include_path)
    print(f"{'task':<16} {'items':>7}  {'type':<16} {'mirrors':<22} description")
    members: dict[str, list[str]] = {}
    for name, spec in sorted(specs.items()):
        if spec.subtask_of:  # one line per group below, not 57 rows
            members.setdefault(spec.subtask_of, []).append(name)
            continue
        try:
            count = str(len(prepare_task(spec, TaskOptions(num_fewshot=0, data_source="offline")).docs))
        except UserError:
            count = "n/a"  # data not installed here; `evalboard run` says what to install
        print(f"{name:<16} {count:>7}  {spec.type:<16} {spec.mirrors.split(' (')[0]:<22} {spec.description}")
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
