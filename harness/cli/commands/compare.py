"""`evalboard compare`: is the candidate (e.g. base + LoRA adapter) better than the base, task by
task, and what regressed?

Two forms:
  evalboard compare BASE_RUN CANDIDATE_RUN            saved runs (ids under --results, or paths)
  evalboard compare --base SPEC --candidate SPEC --tasks a,b   evaluate both first (cached answers reused)

Exit codes: 0 done; 1 --fail-on-regression tripped; 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalboard.cli.commands.run import add_run_arguments, evaluate_from_args
from evalboard.comparison.arena_result import ArenaHeadToHead
from evalboard.errors import UserError

EXIT_REGRESSION = 1
_EPILOG = """examples:
  evalboard compare RUN_BASE RUN_ADAPTER --trained-on arc_easy --html compare.html
  evalboard compare --base hf:BASE --candidate hf:BASE,adapter=PATH --tasks arc_easy,hellaswag,mmlu \\
      --limit 200 --trained-on arc_easy --fail-on-regression 0.02

exit codes: 0 compared; 1 --fail-on-regression tripped; 2 bad input"""
# Evaluation flags that still mean something when comparing two saved runs.
_SHARED_FLAGS = {"tasks", "output_dir"}


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; give the runs before --fail-on-regression, or write "
            f"--fail-on-regression=THRESHOLD"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"the threshold is an absolute difference (>= 0), not {value}")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _run_folder(path: Path) -> Path | None:
    folder = path.parent if path.is_file() else path
    return folder if (folder / "run.json").is_file() else None


def find_run(reference: str, results_dir: Path):
    """A run from a path (run folder or its run.json), an id under `results_dir`, or a unique
    prefix of one."""
    from evalboard.records.run_record import load_run

    folder = _run_folder(Path(reference)) or _run_folder(results_dir / reference)
    if folder is None:
        ids = sorted(p.parent.name for p in results_dir.glob("*/run.json")) if results_dir.is_dir() else []
        matches = [i for i in ids if i.startswith(reference)]
        if len(matches) > 1:
            raise UserError(f"run {reference!r} is ambiguous under {results_dir}: it starts {len(matches)} run ids "
                            f"({', '.join(matches[:4])}{', …' if len(matches) > 4 else ''}); give more of the id")
        if not matches:
            hint = f"{len(ids)} runs there, e.g. {ids[-1]}" if ids else "no runs there"
            raise UserError(f"run {reference!r} not found: not a run folder, and no run id under {results_dir} "
                            f"starts with it ({hint}); pass a run id or a path, and --results DIR if they live elsewhere")
        folder = results_dir / matches[0]
    try:
        return load_run(folder)
    except (ValueError, KeyError, OSError) as exc:
        raise UserError(f"{folder} cannot be read as an evalboard run ({exc}); pass another run") from exc


def _evaluation_flags_given(args: argparse.Namespace, evaluation: list[argparse.Action]) -> list[str]:
    given: dict[str, str] = {}
    for action in evaluation:
        if action.dest not in _SHARED_FLAGS and getattr(args, action.dest) != action.default:
            given.setdefault(action.dest, action.option_strings[0])  # once, not once per spelling (-L)
    return list(given.values())


def _load_or_evaluate(args: argparse.Namespace, evaluation: list[argparse.Action]):
    one_shot = args.base is not None or args.candidate is not None
    if args.label is not None:
        raise UserError("--label names one model; use --base-label and --candidate-label")
    if not one_shot:
        if len(args.runs) != 2:
            raise UserError(f"give two runs (BASE_RUN CANDIDATE_RUN), got {len(args.runs)}; or evaluate both "
                            f"with --base SPEC --candidate SPEC --tasks a,b")
        extra = _evaluation_flags_given(args, evaluation) + [
            flag for flag, value in (("--base-label", args.base_label), ("--candidate-label", args.candidate_label))
            if value is not None
        ]
        if extra:
            raise UserError(f"{', '.join(extra)} only apply when evaluating (--base/--candidate), not to "
                            f"two saved runs")
        return find_run(args.runs[0], args.output_dir), find_run(args.runs[1], args.output_dir)
    if args.runs:
        raise UserError("give either two saved runs or --base/--candidate, not both")
    if args.base is None or args.candidate is None:
        raise UserError("the one-shot form needs both --base SPEC and --candidate SPEC")
    if args.base == args.candidate:
        raise UserError(f"--base and --candidate are the same model ({args.base}); the candidate is "
                        f"usually the base with an adapter, e.g. hf:BASE,adapter=PATH")
    records = []
    for side, spec, label in (("base", args.base, args.base_label), ("candidate", args.candidate, args.candidate_label)):
        print(f"evaluating the {side}: {spec}", file=sys.stderr)
        records.append(_evaluate_or_reuse(args, spec, label))
    return records[0], records[1]


def _evaluate_or_reuse(args: argparse.Namespace, spec: str, label: str | None):
    """Evaluate one side in memory; save it, unless every answer came from the cache and the
    results folder already holds the same run (then that run is used: no duplicate folder)."""
    from evalboard.records.store import check_writable, find_identical_run, save_run

    check_writable(args.output_dir)
    record = evaluate_from_args(argparse.Namespace(**{**vars(args), "label": label, "output_dir": None}),
                                spec, args.tasks)
    usage = record.usage
    existing = find_identical_run(args.output_dir, record) if usage.requests_answered_now == 0 else None
    if existing is not None:
        print(f"  run {existing.run_id} reused: {usage.unique_requests} requests, all from the cache, and "
              f"that saved run measured the same (no new run folder)", file=sys.stderr)
        return existing
    save_run(args.output_dir, record)
    print(f"  run {record.run_id}: {usage.unique_requests} requests, {usage.cache_hits} from cache",
          file=sys.stderr)
    return record


def _results_folder(args: argparse.Namespace) -> Path:
    """--results and --output name the same folder (saved runs are read and new ones written there)."""
    output, results = args.output_dir, args.results_dir
    if output is not None and results is not None and Path(output) != Path(results):
        raise UserError(f"--output {output} and --results {results} name the results folder twice, "
                        f"differently; give one of them")
    return Path(results or output or "results")


def _compare(args: argparse.Namespace, evaluation: list[argparse.Action]) -> int:
    from evalboard.comparison.compare import compare_runs
    from evalboard.comparison.compare_report import format_table, to_html, to_json_text, to_markdown, write_text

    args.output_dir = _results_folder(args)
    base, candidate = _load_or_evaluate(args, evaluation)
    comparison = compare_runs(base, candidate, tasks=_names(args.tasks) or None,
                              trained_on=_names(args.trained_on), alpha=args.alpha, metric=args.metric)
    if args.arena is not None:
        comparison.arena = _arena_head_to_head(args, base.model.spec, candidate.model.spec)
    print(format_table(comparison))
    for path, render in ((args.markdown, to_markdown), (args.html, to_html), (args.json, to_json_text)):
        if path is not None:
            write_text(path, render(comparison))
            print(f"wrote {path}")
    if args.fail_on_regression is not None:
        failing = comparison.regressions(args.fail_on_regression or None)
        if failing:
            detail = ", ".join(f"{t.task} ({t.diff:+.3f})" for t in failing)
            limit = f" by more than {args.fail_on_regression}" if args.fail_on_regression else ""
            print(f"evalboard: {len(failing)} task(s) regressed significantly{limit}: {detail}", file=sys.stderr)
            return EXIT_REGRESSION
    return 0


def _arena_head_to_head(args: argparse.Namespace, base_spec: str, candidate_spec: str) -> ArenaHeadToHead:
    """The candidate against the base on an arena prompt set, judged pairwise: its win rate with an interval."""
    from evalboard.arena.battles import ArenaConfig, run_arena
    from evalboard.leaderboard.arena import win_rate_vs
    from evalboard.paths import response_cache_path

    if not args.judge:
        raise UserError("--arena needs --judge SPEC (any model spec) to compare the two answers")
    name = f"compare-{Path(args.arena).stem if args.arena.endswith(('.yaml', '.yml')) else args.arena}"
    outcome = run_arena(ArenaConfig(
        prompt_set=args.arena, name=name, models=[candidate_spec], judges=[args.judge], results=args.output_dir,
        baseline=base_spec, pairs="baseline", limit=args.arena_limit, max_new_tokens=args.arena_max_new_tokens,
        judge_tokens=args.judge_tokens, cache_path=response_cache_path(), judge_mode=args.judge_mode))
    record = outcome.record
    rate = win_rate_vs(record, base_spec)
    quality = record.judge_quality[0] if record.judge_quality else None
    row = rate.loc[candidate_spec] if candidate_spec in rate.index else None
    return ArenaHeadToHead(
        prompt_set=record.prompt_set or args.arena, judge=args.judge, arena=name,
        battles=float(row.battles) if row is not None else 0.0,
        win_rate=float(row.win_rate) if row is not None else None,
        ci_low=float(row.ci_low) if row is not None else None, ci_high=float(row.ci_high) if row is not None else None,
        consistent=quality.consistent if quality is not None else None,
        unparseable=quality.unparseable if quality is not None else None)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs (e.g. base vs base+adapter): per-task differences, significance, regressions",
        description="Compare a candidate with a base, task by task, on paired items: both scores, the "
        "difference with a 95% interval consistent with a paired test (exact McNemar and its exact interval for pass/fail "
        "metrics, a paired bootstrap and its own interval otherwise), the minimum detectable "
        "difference, Holm's correction across tasks, a verdict, and the items that changed.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="BASE_RUN CANDIDATE_RUN: run ids under --results (a unique prefix will do) or run folders")
    parser.add_argument("--base", metavar="SPEC", help="evaluate this model first as the base (with --candidate, --tasks)")
    parser.add_argument("--candidate", metavar="SPEC", help="evaluate this model first as the candidate, "
                        "e.g. hf:BASE,adapter=PATH")
    parser.add_argument("--base-label", default=None, help="display name of the base (with --base)")
    parser.add_argument("--candidate-label", default=None, help="display name of the candidate (with --candidate)")
    parser.add_argument("--trained-on", metavar="TASKS", default=None,
                        help="comma-separated tasks the candidate was trained for; the rest count as held-out, "
                        "and their regressions as forgetting")
    parser.add_argument("--metric", default=None, help="compare this per-item metric instead of each task's "
                        "primary one (e.g. acc beside acc_norm); every compared task must have it")
    parser.add_argument("--alpha", type=_alpha, default=0.05, help="significance level after Holm's correction (0.05)")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown report")
    parser.add_argument("--html", type=Path, metavar="PATH", help="write an HTML report")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the comparison as JSON")
    parser.add_argument("--fail-on-regression", type=_threshold, nargs="?", const=0.0, default=None,
                        metavar="THRESHOLD", help="exit 1 if any task regressed significantly (optionally by more "
                        "than THRESHOLD, absolute: 0.02 = two accuracy points)")
    parser.add_argument("--arena", metavar="PROMPT_SET", default=None,
                        help="also battle the candidate against the base on an arena prompt set (mt-bench, "
                        "arena-hard-v2.0, alpaca-eval or a file), judged pairwise by --judge")
    parser.add_argument("--judge", metavar="SPEC", default=None, help="the judge for --arena (any model spec)")
    parser.add_argument("--arena-limit", type=int, default=None, metavar="N", help="the first N arena prompts only")
    parser.add_argument("--arena-max-new-tokens", type=int, default=None, metavar="N",
                        help="the two models' arena answer length (default: the prompt set's)")
    parser.add_argument("--judge-tokens", type=int, default=None, metavar="N",
                        help="the judge's reply length (default: the prompt set's)")
    parser.add_argument("--judge-mode", choices=["generate", "likelihood"], default="generate",
                        help="how the judge decides: generate (its reply, parsed as the prompt defines; the reference way) or "
                        "likelihood (the most probable of the prompt's verdicts: for small local judges)")
    before = len(parser._actions)
    evaluation = parser.add_argument_group(
        "evaluating first (with --base/--candidate; --tasks also limits a comparison of saved runs)")
    add_run_arguments(evaluation, model_required=False)
    evaluation_flags = parser._actions[before:]
    # `--results` reads better when comparing saved runs; it is the same folder as --output, so
    # neither has a default of its own here (`_results_folder` reconciles them).
    parser._option_string_actions["--output"].default = None
    parser.add_argument("--results", dest="results_dir", type=Path, default=None, metavar="DIR",
                        help="where saved runs live and new ones are written (default: results/; the same as --output)")
    parser.set_defaults(handler=lambda args: _compare(args, evaluation_flags))
