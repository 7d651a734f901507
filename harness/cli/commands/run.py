"""`evalboard run`: evaluate one model on some tasks (flags familiar to lm-eval users)."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalboard.errors import UserError
from evalboard.cli.summary import print_summary


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {value}")
    return value


def add_run_arguments(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    """The evaluation flags shared by `run`, `quickstart` and `compare`."""
    if model_required:
        parser.add_argument("--model", required=True, help="model spec, e.g. hf:PATH_OR_ID, hf:BASE,adapter=PATH, "
                            "vllm:PATH, openai-compatible:URL#MODEL, openai:MODEL, anthropic:MODEL")
    parser.add_argument("--tasks", help="comma-separated task names (see `evalboard tasks`)")
    parser.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples (default: the task's)")
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N items of each task")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--output", type=Path, default=Path("results"), help="results store (default: results/)")
    parser.add_argument("--apply-chat-template", action="store_true", help="prompt as a chat; few-shot as turns")
    parser.add_argument("--system-prompt", default=None)
    parser.add_argument("--formulation", choices=["auto", "loglikelihood", "generative"], default="auto",
                        help="multiple choice by loglikelihood or by a generated letter (auto: by capability)")
    parser.add_argument("--data-source", choices=["auto", "offline", "hub"], default="auto")
    parser.add_argument("--data-dir", type=Path, default=None, help="local copies: DIR/<task>/<split>.jsonl")
    parser.add_argument("--include-path", type=Path, action="append", default=[], help="a directory of your own task files")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--concurrency", type=positive_int, default=8, help="parallel requests to remote models")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    parser.add_argument("--allow-code-execution", action="store_true", help="run generated code (sandboxed) for HumanEval")
    parser.add_argument("--samples-per-problem", type=positive_int, default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=positive_int, default=None)
    parser.add_argument("--label", default=None, help="display name for the leaderboard")


def evaluate_from_args(args: argparse.Namespace, model: str, tasks: str):
    from evalboard.engine.api import evaluate

    if not tasks:
        raise UserError("no tasks given; pass --tasks a,b (see `evalboard tasks`)")
    return evaluate(
        model, tasks, num_fewshot=args.num_fewshot, limit=args.limit, batch_size=args.batch_size,
        seed=args.seed, output_dir=args.output, apply_chat_template=args.apply_chat_template,
        system_prompt=args.system_prompt, formulation=args.formulation, data_source=args.data_source,
        data_dir=args.data_dir, include_paths=args.include_path, device=args.device, dtype=args.dtype,
        concurrency=args.concurrency, cache=not args.no_cache, allow_code_execution=args.allow_code_execution,
        samples_per_problem=args.samples_per_problem, temperature=args.temperature,
        max_new_tokens=args.max_new_tokens, label=args.label, progress=True,
    )


def _run(args: argparse.Namespace) -> int:
    record = evaluate_from_args(args, args.model, args.tasks)
    print_summary(record)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="evaluate a model on tasks")
    add_run_arguments(parser)
    parser.set_defaults(handler=_run)
