"""`evalboard runs [--results DIR]` lists the runs in a results folder; `evalboard runs show RUN`
shows one (RUN: its id, a unique start of it, or its folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalboard.errors import UserError
from evalboard.records.run_record import RunRecord, TaskResult


def _primary(entry: TaskResult) -> str:
    metric = entry.primary_metric
    value = entry.metrics.get(metric)
    return f"{metric}={value.value:.4f}" if value is not None else f"{metric}=?"


def _list(args: argparse.Namespace) -> int:
    from evalboard.records.store import scan_runs

    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"results folder {results} does not exist; pass --results DIR (where `evalboard run "
                        f"--output DIR` wrote its runs)")
    runs, skipped = scan_runs(results)
    for folder, why in skipped:
        print(f"warning: skipped {folder}: {why}", file=sys.stderr)
    if not runs:
        print(f"no runs in {results}")
        return 0
    width = max(len(run.run_id) for run in runs)
    print(f"{'run':<{width}}  {'created (UTC)':<19}  {'model':<28}  tasks (primary metric)")
    for run in runs:
        tasks = ", ".join(f"{name} {_primary(entry)}" for name, entry in run.tasks.items())
        print(f"{run.run_id:<{width}}  {run.created_at[:19].replace('T', ' '):<19}  {run.model.label[:28]:<28}  {tasks}")
    print(f"{len(runs)} run(s) in {results}; `evalboard runs show RUN --results {results}` shows one")
    return 0


def find_run(results: Path, wanted: str) -> RunRecord:
    """A run by folder path, id, or a start of its id that only it has."""
    from evalboard.records.run_record import load_run
    from evalboard.records.store import list_runs

    as_path = Path(wanted)
    if (as_path / "run.json").is_file():
        return load_run(as_path)
    if not results.is_dir():
        raise UserError(f"results folder {results} does not exist; pass --results DIR")
    runs = list_runs(results)
    matches = [run for run in runs if run.run_id == wanted] or [run for run in runs if run.run_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no run {wanted!r} in {results}; `evalboard runs --results {results}` lists them")
    raise UserError(f"{len(matches)} runs in {results} start with {wanted!r} ({', '.join(r.run_id for r in matches[:4])}"
                    f"{', ...' if len(matches) > 4 else ''}); give more of the id")


def format_run(run: RunRecord) -> str:
    settings = run.settings
    lines = [
        f"run      {run.run_id}",
        f"folder   {run.path}",
        f"created  {run.created_at}" + (f" in {run.wall_time_s:.1f}s" if run.wall_time_s is not None else ""),
        f"harness  {run.harness.name} {run.harness.version or ''}".rstrip()
        + (f" ({run.harness.git_commit[:12]})" if run.harness.git_commit else "")
        + (f"; imported from {run.imported.from_}" if run.imported else ""),
        f"model    {run.model.label}" + (f" ({run.model.spec})" if run.model.spec != run.model.label else "")
        + f", fingerprint {run.model.fingerprint[:16]}",
        f"settings seed {settings.seed}, limit {settings.limit}, data {settings.data_source}, "
        f"chat template {'yes' if settings.style.apply_chat_template else 'no'}"
        + (f", system prompt {settings.style.system_prompt!r}" if settings.style.system_prompt else ""),
    ]
    for name, entry in run.tasks.items():
        lines.append("")
        lines.append(f"task {name}: {entry.formulation}, {entry.num_fewshot}-shot, {entry.n_items} items"
                     + (f" ({entry.failed_items} failed)" if entry.failed_items else "")
                     + (f", mirrors {entry.mirrors}" if entry.mirrors else ""))
        lines.append(f"  data {entry.data_origin}; fingerprint {entry.task_fingerprint[:16]}"
                     + (f"; samples {run.path / entry.samples_file}" if run.path and entry.samples_file else ""))
        for metric, value in entry.metrics.items():
            stderr = f" ± {value.stderr:.4f}" if value.stderr is not None else ""
            mark = "  (primary)" if metric == entry.primary_metric else ""
            lines.append(f"  {metric:<28} {value.value:.4f}{stderr}  n={value.n}{mark}")
    usage = run.usage
    if usage.unique_requests is not None:
        lines.append("")
        lines.append(f"usage    {usage.unique_requests} requests ({usage.cache_hits} from cache)"
                     + (f", {usage.input_tokens} input / {usage.output_tokens} output tokens"
                        if usage.input_tokens is not None else "")
                     + (f", ${usage.cost_usd:.4f}" if usage.cost_usd else ""))
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    print(format_run(find_run(Path(args.results), args.run)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("runs", help="list the runs in a results folder, or show one")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results/)")
    parser.set_defaults(handler=_list)
    commands = parser.add_subparsers(dest="runs_command")
    show = commands.add_parser("show", help="one run: model, settings, every task's metrics")
    show.add_argument("run", help="a run id (or a unique start of it), or a run folder")
    show.add_argument("--results", type=Path, default=argparse.SUPPRESS, help="results folder (default: results/)")
    show.set_defaults(handler=_show)
