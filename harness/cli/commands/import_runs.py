"""`evalboard import lm-eval PATH` and `evalboard import battles PATH`: bring other harnesses' results
(and other arenas' human battles) into the results store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _lm_eval(args: argparse.Namespace) -> int:
    from evalboard.engine.lm_eval_join import join_mirrored_tasks
    from evalboard.records.lm_eval_import import import_lm_eval

    joined: list[tuple[str, str]] = []

    def join(record: Any) -> None:
        if not args.no_join:
            joined.extend(join_mirrored_tasks(record, args.include_path, args.data_dir))

    result = import_lm_eval(args.path, args.results, label=args.label, join=join)
    for path in result.imported:
        print(f"imported {path}")
    for lm_eval_task, task in sorted(set(joined)):
        print(f"joined: lm-eval {lm_eval_task} is evalboard's {task} (same items, same requests)")
    for run_id in result.skipped:
        print(f"already in the store: {run_id}")
    print(f"{len(result.imported)} run(s) imported, {len(result.skipped)} already present")
    return 0


def _battles(args: argparse.Namespace) -> int:
    from evalboard.arena.imports import read_battles
    from evalboard.records.arena_record import save_arena

    name = args.name or args.path.stem
    record = read_battles(args.path, name)
    folder = save_arena(args.results, record)
    print(f"imported {record.battles:,.0f} battles between {len(record.models)} models "
          f"({record.source} format) into {folder}")
    print(f"rate them with: evalboard arena ratings {name}" +
          ("" if args.results == Path("results") else f" --results {args.results}"))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import", help="import results from another harness (lm-eval) or human battles")
    sources = parser.add_subparsers(dest="import_source", required=True)
    lm_eval = sources.add_parser("lm-eval", help="lm-eval results_*.json (+ samples_*.jsonl) files or folders")
    lm_eval.add_argument("path", type=Path, help="a results_*.json file or lm-eval's --output_path folder")
    lm_eval.add_argument("--results", type=Path, default=Path("results"), help="results store (default: results/)")
    lm_eval.add_argument("--label", default=None, help="display name (default: the model's name)")
    lm_eval.add_argument("--no-join", action="store_true", help="keep every imported task in its own column, "
                         "even one that is the same measurement as the evalboard task mirroring it")
    lm_eval.add_argument("--include-path", type=Path, action="append", default=[],
                         help="more evalboard task files to join imported tasks to")
    lm_eval.add_argument("--data-dir", type=Path, default=None, help="local task data (as `evalboard run --data-dir`)")
    lm_eval.set_defaults(handler=_lm_eval)
    battles = sources.add_parser("battles", help="human battles: leaderbot's Chatbot Arena counts or a FastChat battle log")
    battles.add_argument("path", type=Path, help="leaderbot counts (.json with models/X/Y) or FastChat battles (.json/.jsonl)")
    battles.add_argument("--name", default=None, help="the arena's name (default: the file's stem)")
    battles.add_argument("--results", type=Path, default=Path("results"), help="results store (default: results/)")
    battles.set_defaults(handler=_battles)
