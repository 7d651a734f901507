"""`evalboard show TASK --model SPEC --limit 3`: the exact text the model receives for a task's first
items (lm-eval's `--write_out`), after the model's chat template and with the special tokens its
tokenizer adds, followed by what is scored or generated after it. Nothing is asked of the model."""

from __future__ import annotations

import argparse
from typing import Any

from evalboard.cli.commands.run import add_option
from evalboard.errors import UserError

# The run options that change what a model is asked (the rest do not matter for showing it).
_PROMPT_OPTIONS = ("num_fewshot", "seed", "apply_chat_template", "system_prompt", "formulation",
                   "data_source", "data_dir", "include_paths", "device", "dtype", "max_length")


def _ending(text: str) -> str:
    """The input's last characters, quoted, so trailing spaces and newlines are visible."""
    return repr(text[-16:]) if len(text) > 16 else repr(text)


def _print_input(text: str | None, readable: str, source: str) -> None:
    if text is None:
        print(f"=== {source} renders this prompt out of sight (a hosted API applies its own template); "
              f"what is sent ===")
        print(readable)
        print("=== end of messages ===")
        return
    print("=== model input ===")
    print(text)
    print(f"=== end of model input (it ends with {_ending(text)}) ===")


def _show_item(position: int, total: int, doc: dict[str, Any], task: Any, adapter: Any, source: str) -> None:
    from evalboard.requests import GenerateRequest, LoglikelihoodRequest, prompt_text

    formulation = task.formulation
    gold = formulation.target(doc)
    print(f"--- {task.name} item {position} of {total} (doc {doc['id']}), {formulation.name}, "
          f"{task.num_fewshot}-shot" + (f"; gold: {gold!r}" if gold is not None else "") + " ---")
    shown: list[Any] = []
    for request in task.requests(doc):
        context = getattr(request, "context", None)
        if context is None:  # rolling loglikelihood: the text itself is scored
            print("=== text whose loglikelihood is scored (in the model's rolling windows) ===")
            print(request.text)
            continue
        if context not in shown:
            shown.append(context)
            rendered = adapter.model_input(context) if adapter is not None else prompt_text(context)
            _print_input(rendered, prompt_text(context), source)
        if isinstance(request, LoglikelihoodRequest):
            print(f"  scored continuation: {request.continuation!r}")
        elif isinstance(request, GenerateRequest):
            params = request.params
            print(f"  generates up to {params.max_new_tokens} tokens, temperature {params.temperature}, "
                  f"stop at {list(params.stop)!r}")
    print()


def _show(args: argparse.Namespace) -> int:
    from evalboard.engine.options import RunOptions
    from evalboard.requests import Capabilities
    from evalboard.taskdef.prepared import choose_formulation, prepare_task
    from evalboard.taskdef.registry import discover_tasks, resolve_task_names

    options = RunOptions.parse({name: getattr(args, name) for name in _PROMPT_OPTIONS}, where="evalboard show")
    specs = discover_tasks(options.include_paths)
    names = resolve_task_names([args.task], specs)
    if len(names) != 1:
        raise UserError(f"evalboard show takes one task; {args.task!r} names {len(names)} "
                        f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): name one of them")
    task = prepare_task(specs[names[0]], options.task_options())
    # the first N items of the task as a whole (a group's --limit in a run takes N of each member)
    task.docs = task.docs[:args.limit]
    adapter = None
    if args.model:
        from evalboard.models.adapters.base import load_adapter

        adapter = load_adapter(args.model, options.adapter_settings())
    try:
        capabilities = adapter.capabilities if adapter is not None else Capabilities(loglikelihood=True, generate=True, chat=False)
        choose_formulation(task, capabilities, args.model or "a model")
        source = args.model or "the model"
        if adapter is None:
            print("(no --model: the prompt as a completion model gets it, before any tokenizer's special "
                  "tokens; with --model SPEC you see the exact text that model reads)")
        for position, doc in enumerate(task.docs, start=1):
            _show_item(position, len(task.docs), doc, task, adapter, source)
    finally:
        if adapter is not None:
            adapter.close()
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="print the exact text the model receives for a task's first items")
    parser.add_argument("task", help="a task name (see `evalboard tasks`)")
    parser.add_argument("--model", help="model spec (its chat template and tokenizer are applied); "
                        "without it, the prompt before any tokenizer")
    parser.add_argument("--limit", type=_positive, default=3, help="how many items (default: 3)")
    for option in _PROMPT_OPTIONS:
        add_option(parser, option)
    parser.set_defaults(handler=_show)

