"""`evalboard quickstart`: the main job. Evaluates the default model (SmolLM2-135M-Instruct,
shipped in a package) on every task, with and without its chat template, next to a chance
baseline, with a small limit per task (MMLU's per subject, so its column samples all 57), writes
the runs to results/ and builds the leaderboard page (results/leaderboard/index.html)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalboard.cli.commands.run import add_option
from evalboard.cli.summary import print_summary
from evalboard.models.default_model import DEFAULT_MODEL_SPEC

if TYPE_CHECKING:
    from evalboard.taskdef.spec import TaskSpec


@dataclass(frozen=True)
class QuickstartModel:
    spec: str
    label: str
    apply_chat_template: bool = False


MODELS = (
    QuickstartModel(DEFAULT_MODEL_SPEC, "SmolLM2-135M-Instruct"),
    QuickstartModel(DEFAULT_MODEL_SPEC, "SmolLM2-135M-Instruct (chat template)", apply_chat_template=True),
    # The chat template is part of a leaderboard column's identity, so the baseline answers both
    # prompt styles: every row then has a comparable partner and a rating.
    QuickstartModel("chance:0", "chance baseline"),
    QuickstartModel("chance:0", "chance baseline", apply_chat_template=True),
)


def _offline_ready(spec: TaskSpec) -> bool:
    """Whether the task's items and few-shot examples ship offline (the main job runs anywhere)."""
    from evalboard.errors import UserError
    from evalboard.taskdef.prepared import TaskOptions, prepare_task

    try:
        prepare_task(spec, TaskOptions(data_source="offline", limit=1))
    except UserError:
        return False
    return True


def _task_groups(selected: str | None) -> tuple[list[str], list[str], list[str], list[str]]:
    """(scored tasks, scored grouped tasks, generative grouped tasks, generative tasks): every base
    task (not the chat variants, not a group's members) whose data ships offline, or the tasks
    asked for. A grouped task (MMLU, MATH) takes its limit per member, so it gets its own, smaller
    one: a sample of every subject rather than the first subject only."""
    from evalboard.taskdef.registry import discover_tasks, resolve_task_names
    from evalboard.taskdef.shapes import shapes_for

    specs = discover_tasks()
    if selected:
        names = resolve_task_names(selected, specs)
    else:
        base = sorted(name for name, spec in specs.items() if not spec.chat_variant_of and not spec.subtask_of)
        names = [name for name in base if _offline_ready(specs[name])]
        skipped = [name for name in base if name not in names]
        if skipped:  # one line, not one per task: `evalboard tasks NAME` says where each one's data comes from
            print(f"== skipping {len(skipped)} tasks whose items or few-shot examples ship in no package "
                  f"(they need the Hub or --data-dir; `evalboard tasks NAME` says where): {', '.join(skipped)}",
                  flush=True)
    def scored(name: str) -> bool:  # loglikelihood-first shapes: their items are cheap to score
        return shapes_for(specs[name].type)[0].needs == "loglikelihood"

    grouped = [n for n in names if specs[n].group_field and specs[n].lm_eval_group]
    return ([n for n in names if scored(n) and n not in grouped], [n for n in grouped if scored(n)],
            [n for n in grouped if not scored(n)], [n for n in names if not scored(n) and n not in grouped])


def _quickstart(args: argparse.Namespace) -> int:
    from evalboard.engine.api import evaluate

    choice_tasks, grouped_choice, grouped_generative, generative_tasks = _task_groups(args.tasks)
    for model in MODELS:
        for tasks, limit, max_new_tokens, each in (
                (choice_tasks, args.limit, None, "each"),
                (grouped_choice, args.group_limit, None, "of each member"),
                (grouped_generative, args.group_limit, args.max_new_tokens, "of each member"),
                (generative_tasks, args.generative_limit, args.max_new_tokens, "each")):
            if not tasks:
                continue
            print(f"== {model.label}: {', '.join(tasks)} ({limit} items {each})", flush=True)
            record = evaluate(
                model.spec, tasks, limit=limit, output_dir=args.output_dir, label=model.label,
                apply_chat_template=model.apply_chat_template, allow_code_execution=True,
                max_new_tokens=max_new_tokens, batch_size=args.batch_size, progress=True,
            )
            print_summary(record)
    from evalboard.leaderboard.build import build_leaderboard

    page = args.output_dir / "leaderboard" / "index.html"
    build_leaderboard(args.output_dir, page)
    print(f"leaderboard: {page.resolve()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("quickstart", help="evaluate the default model on every task (small limits)")
    add_option(parser, "limit", default=20, help="items per multiple-choice task")
    add_option(parser, "limit", flag="--group-limit", dest="group_limit", default=2,
               help="items per member of a grouped task (mmlu: per subject, 57 subjects)")
    add_option(parser, "limit", flag="--generative-limit", dest="generative_limit", default=5,
               help="items per generative task")
    add_option(parser, "max_new_tokens", default=256, help="cap on generated tokens (recorded)")
    parser.add_argument("--tasks", default=None)
    add_option(parser, "batch_size")
    add_option(parser, "output_dir")
    parser.set_defaults(handler=_quickstart)
