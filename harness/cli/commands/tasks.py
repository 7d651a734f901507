"""`evalboard tasks`: list the tasks with descriptions and item counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalboard.errors import UserError


def _list(args: argparse.Namespace) -> int:
    """One aligned row per task, printed as soon as its items are counted (the header and the
    first rows appear at once; counting reads each task's data)."""
    from evalboard.taskdef.registry import discover_tasks

    specs = discover_tasks(args.include_path)
    rows = {name: (spec.type, spec.mirrors.split(" (")[0], spec.description) for name, spec in sorted(specs.items())}
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
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="list available tasks")
    parser.add_argument("--include-path", type=Path, action="append", default=[])
    parser.set_defaults(handler=_list)
