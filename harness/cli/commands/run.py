"""`evalboard run`: evaluate one model on some tasks (flags familiar to lm-eval users).

The evaluation flags are generated from `RunOptions` (evalboard.engine.options): one flag per
option, its type, default and help from there, so a new option is a flag without touching this file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalboard.cli.summary import print_summary
from evalboard.engine.options import RunOptions, check_value, describe, field_schema, option_info
from evalboard.errors import UserError

_TEXT_TO = {"integer": int, "number": float, "string": str}


def _scalar(node: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional option's schema."""
    branches = [n for n in node.get("anyOf", [node]) if n.get("type") != "null"]
    return branches[0] if len(branches) == 1 else node


def _parser_for(name: str, node: dict[str, Any], item: bool = False) -> Callable[[str], Any]:
    """argparse `type=`: the flag's text as RunOptions takes it, checked the same way (`item`: one
    element of a list option, given once per flag)."""
    convert = Path if node.get("format") == "path" else _TEXT_TO.get(node.get("type", "string"), str)

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {describe(node, {}, 'cli')}, not {text!r}") from None
        try:
            return check_value(name, [value])[0] if item else check_value(name, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _metavar(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_").upper()


def add_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *, flag: str | None = None,
               dest: str | None = None, **overrides: Any) -> argparse.Action:
    """The flag of one RunOptions field (`overrides`: another default or help, e.g. quickstart's)."""
    info, field = option_info(name), RunOptions.model_fields[name]
    node = field_schema(name)
    flag = flag or info.flag or f"--{name.replace('_', '-')}"
    kwargs: dict[str, Any] = {"dest": dest or name, "default": field.get_default(call_default_factory=True),
                              "help": info.help}
    kinds = {n.get("type") for n in node.get("anyOf", [node])}
    if "boolean" in kinds:
        kwargs["action"] = "store_false" if kwargs["default"] else "store_true"
    elif "array" in kinds:
        kwargs.update(action="append", type=_parser_for(name, node["items"], item=True), metavar=_metavar(flag))
    else:
        scalar = _scalar(node)
        kwargs["type"] = _parser_for(name, scalar)
        if "enum" in scalar:
            kwargs["choices"] = scalar["enum"]
        else:
            kwargs["metavar"] = _metavar(flag)
    kwargs.update(overrides)
    return parser.add_argument(flag, **kwargs)


def add_run_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model_required: bool = True) -> None:
    """The evaluation flags shared by `run` and `compare`: --model, --tasks and every RunOptions field."""
    if model_required:
        parser.add_argument("--model", required=True, help="model spec, e.g. hf:PATH_OR_ID, hf:BASE,adapter=PATH, "
                            "vllm:PATH, openai-compatible:URL#MODEL, openai:MODEL, anthropic:MODEL")
    parser.add_argument("--tasks", help="comma-separated task names (see `evalboard tasks`)")
    for name in RunOptions.model_fields:
        add_option(parser, name)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """evaluate() keywords from the parsed flags (those this command has)."""
    return {name: getattr(args, name) for name in RunOptions.model_fields if hasattr(args, name)}


def evaluate_from_args(args: argparse.Namespace, model: str, tasks: str):
    from evalboard.engine.api import evaluate

    if not tasks:
        raise UserError("no tasks given; pass --tasks a,b (see `evalboard tasks`)")
    return evaluate(model, tasks, progress=True, **options_from_args(args))


def _run(args: argparse.Namespace) -> int:
    record = evaluate_from_args(args, args.model, args.tasks)
    print_summary(record, show_subtasks=args.show_subtasks)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="evaluate a model on tasks")
    add_run_arguments(parser)
    # display only (the record always holds the subtasks), so not an evaluation option
    parser.add_argument("--show-subtasks", action="store_true",
                        help="list a group task's subtasks (MMLU's subjects) under it in the summary")
    parser.set_defaults(handler=_run)
