"""`evalboard run`: evaluate one model on some tasks (flags familiar to lm-eval users).

The evaluation flags are generated from `RunOptions` (evalboard.engine.options): one flag per
option, its type, default and help from there, so a new option is a flag without touching this file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalboard.cli.lm_eval_flags import (
    LOG_LEVELS,
    batch_size,
    check_fewshot_as_multiturn,
    generation_options,
    lm_eval_bool,
    model_spec,
    set_verbosity,
    with_trust_remote_code,
)
from evalboard.cli.summary import print_summary
from evalboard.engine.options import RunOptions, check_value, describe, field_schema, option_info
from evalboard.errors import UserError

_TEXT_TO = {"integer": int, "number": float, "string": str}


def _scalar(node: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional option's schema."""
    branches = [n for n in node.get("anyOf", [node]) if n.get("type") != "null"]
    return branches[0] if len(branches) == 1 else node


def _converter(node: dict[str, Any]) -> Callable[[str], Any]:
    """Text -> the option's Python type; for a union (`--limit 10` or `0.01`, `--batch-size 8` or
    `auto`) the first of whole number, number, text that reads it."""
    if node.get("format") == "path":
        return Path
    kinds = [n.get("type", "string") for n in node.get("anyOf", [node]) if n.get("type") != "null"]
    if len(kinds) == 1:
        return _TEXT_TO.get(kinds[0], str)
    order = [kind for kind in ("integer", "number", "string") if kind in kinds]

    def convert(text: str) -> Any:
        for kind in order:
            try:
                return _TEXT_TO[kind](text)
            except ValueError:
                continue
        raise ValueError(text)

    return convert


def _parser_for(name: str, node: dict[str, Any], item: bool = False) -> Callable[[str], Any]:
    """argparse `type=`: the flag's text as RunOptions takes it, checked the same way (`item`: one
    element of a list option, given once per flag)."""
    convert = _converter(node)

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
        kwargs.update(action="append", type=_parser_for(name, _scalar(node)["items"], item=True),
                      metavar=_metavar(flag))
    else:
        scalar = _scalar(node)
        kwargs["type"] = _parser_for(name, scalar)
        if "enum" in scalar and scalar.get("type") == "string":
            kwargs["choices"] = scalar["enum"]
        else:
            kwargs["metavar"] = _metavar(flag)
    kwargs.update(overrides)
    action = parser.add_argument(flag, **kwargs)
    # lm-eval's spellings too (`--num_fewshot`, `--output_path`), kept out of --help: the same
    # option under another name, so an error names the flag as the user typed it
    aliases = [f"--{flag[2:].replace('-', '_')}", *_LM_EVAL_ALIASES.get(flag, ())]
    for alias in dict.fromkeys(a for a in aliases if a != flag):
        parser.add_argument(alias, **{**kwargs, "help": argparse.SUPPRESS})
    return action


# lm-eval's names for flags that evalboard spells otherwise (each also with `_` for `-`)
_LM_EVAL_ALIASES = {
    "--output": ("--output-path", "--output_path", "-o"),
    "--num-fewshot": ("-f",), "--batch-size": ("-b",), "--limit": ("-L",),
    "--system-prompt": ("--system-instruction", "--system_instruction"),
    "--allow-code-execution": ("--confirm-run-unsafe-code", "--confirm_run_unsafe_code"),
}


def _batch_size(text: str) -> int | str:
    try:
        return batch_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _TaskNames(argparse.Action):
    """`--tasks a,b`, `--tasks a b` (lm-eval's) and repeated `--tasks`: one comma-separated text."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, ",".join([*([given] if given else []), *values]))


def add_run_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model_required: bool = True) -> None:
    """The evaluation flags shared by `run` and `compare`: --model, --tasks and every RunOptions field."""
    if model_required:
        parser.add_argument("--model", "-M", required=True, help="model spec, e.g. hf:PATH_OR_ID, hf:BASE,adapter=PATH, "
                            "vllm:PATH, openai-compatible:URL#MODEL, openai:MODEL, anthropic:MODEL; or an "
                            "lm-eval model name (hf, vllm, local-completions, ...) with --model_args")
        parser.add_argument("--model-args", "--model_args", "-a", nargs="+", default=None, metavar="KEY=VALUE",
                            help="lm-eval's model arguments, e.g. pretrained=NAME,dtype=float32 (with --model hf)")
    parser.add_argument("--tasks", "-t", nargs="+", action=_TaskNames, metavar="TASK",
                        help="task names, groups (mmlu) or globs ('mmlu_*'), comma- or space-separated "
                             "(see `evalboard tasks`)")
    for name in RunOptions.model_fields:
        overrides: dict[str, Any] = {"type": _batch_size} if name == "batch_size" else {}
        add_option(parser, name, **overrides)
    parser.add_argument("--gen-kwargs", "--gen_kwargs", nargs="+", default=None, metavar="KEY=VALUE",
                        help="lm-eval's generation arguments: temperature, top_p, top_k, max_gen_toks, until, "
                             "do_sample (override the task's; recorded and part of its fingerprint)")
    parser.add_argument("--log-samples", "--log_samples", "-s", action="store_true",
                        help="accepted for lm-eval's sake: evalboard always logs every sample")
    parser.add_argument("--write-out", "--write_out", "-w", action="store_true",
                        help="print each task's first model input (as logged) and its target after the run")
    # lm-eval's, kept out of --help: what they mean is already evalboard's way (see lm_eval_flags)
    parser.add_argument("--fewshot-as-multiturn", "--fewshot_as_multiturn", nargs="?", const=True, default=None,
                        type=lm_eval_bool, help=argparse.SUPPRESS)
    parser.add_argument("--trust-remote-code", "--trust_remote_code", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--verbosity", "-v", type=str.upper, default=None, choices=LOG_LEVELS, metavar="LEVEL",
                        help="log level: DEBUG, INFO, WARNING (default), ERROR or CRITICAL (as lm-eval's)")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """evaluate() keywords from the parsed flags (those this command has); `--gen_kwargs` sets the
    generation options it names, over their own flags."""
    options = {name: getattr(args, name) for name in RunOptions.model_fields if hasattr(args, name)}
    options.update(generation_options(getattr(args, "gen_kwargs", None)))
    return options


def evaluate_from_args(args: argparse.Namespace, model: str, tasks: str):
    from evalboard.engine.api import evaluate

    if not tasks:
        raise UserError("no tasks given; pass --tasks a,b (see `evalboard tasks`)")
    set_verbosity(getattr(args, "verbosity", None))
    check_fewshot_as_multiturn(getattr(args, "fewshot_as_multiturn", None), bool(getattr(args, "apply_chat_template", False)))
    spec = model_spec(model, getattr(args, "model_args", None))
    if getattr(args, "trust_remote_code", False):
        spec = with_trust_remote_code(spec)
    return evaluate(spec, tasks, progress=True, **options_from_args(args))


def _write_out(record: Any) -> None:
    for task, samples in record.samples.items():
        if samples:  # the exact text the model read where the adapter renders it, else the readable prompt
            first = samples[0]
            shown = ("first model input", first.model_input) if first.model_input is not None else (
                "first prompt", first.prompt)
            print(f"== {task}: {shown[0]}\n{shown[1]}\n== {task}: its target: {first.target!r}")


def _run(args: argparse.Namespace) -> int:
    record = evaluate_from_args(args, args.model, args.tasks)
    if args.write_out:
        _write_out(record)
    print_summary(record, show_subtasks=args.show_subtasks)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="evaluate a model on tasks")
    add_run_arguments(parser)
    # display only (the record always holds the subtasks), so not an evaluation option
    parser.add_argument("--show-subtasks", action="store_true",
                        help="list a group task's subtasks (MMLU's subjects) under it in the summary")
    parser.set_defaults(handler=_run)
