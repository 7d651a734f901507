"""`evalboard leaderboard build|update`: the static HTML leaderboard from the results store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple


class BuildSettings(NamedTuple):
    results: Path
    output: Path
    title: str
    rounds: int
    seed: int


def _build_settings(args: argparse.Namespace) -> BuildSettings:
    """Where to read and write, and how: the flags given, then `--config`'s settings (the same file
    `update` reads), then the defaults. The page goes inside the results folder unless told
    otherwise (`--results DIR` writes DIR/leaderboard/index.html)."""
    settings: dict[str, Any] = {"results": args.results, "output": args.output, "title": args.title,
                                   "rounds": args.rounds, "seed": args.seed}
    if args.config is not None:
        from evalboard.engine.nightly import load_config

        config = load_config(args.config)
        from_config = {"results": config.results, "output": config.output, "title": config.title,
                       "rounds": config.bootstrap_rounds, "seed": config.bootstrap_seed}
        settings = {key: from_config[key] if value is None else value for key, value in settings.items()}
    results = Path(str(settings["results"] or "results"))
    return BuildSettings(
        results=results,
        output=Path(settings["output"] or results / "leaderboard" / "index.html"),
        title=settings["title"] or "evalboard leaderboard",
        rounds=1000 if settings["rounds"] is None else settings["rounds"],
        seed=0 if settings["seed"] is None else settings["seed"],
    )


def _build(args: argparse.Namespace) -> int:
    from evalboard.leaderboard.build import build_leaderboard

    chosen = _build_settings(args)
    report = build_leaderboard(chosen.results, chosen.output, rounds=chosen.rounds, seed=chosen.seed,
                               title=chosen.title, cache=not args.no_cache)
    print(f"{report.models} models, {report.columns} task columns, {report.runs} runs, "
          f"{report.rated_items:,} rated item scores")
    print(f"wrote {report.page} (+ {', '.join(p.name for p in report.exports)})")
    for path, why in report.unreadable:
        print(f"warning: {path} {why}", file=sys.stderr)
    return 0


def _update(args: argparse.Namespace) -> int:
    from evalboard.engine.nightly import load_config, run_update

    config = load_config(args.config)
    if args.executor is not None or args.ray_address is not None:
        from evalboard.engine.nightly import with_executor

        config = with_executor(config, args.executor, args.ray_address)
    result = run_update(config, dry_run=args.dry_run)
    return 1 if result.failures else 0


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("leaderboard", help="build or update the static HTML leaderboard")
    commands = parser.add_subparsers(dest="leaderboard_command", required=True)

    build = commands.add_parser("build", help="write the leaderboard page (+ CSV/JSON exports) from a results store")
    build.add_argument("--config", type=Path, default=None,
                       help="read results, output, title and bootstrap settings from this leaderboard config "
                       "(the one `update` takes); flags given here win")
    build.add_argument("--results", type=Path, default=None, help="results store (default: results/)")
    build.add_argument("--output", type=Path, default=None,
                       help="the page; exports go beside it (default: RESULTS/leaderboard/index.html)")
    build.add_argument("--rounds", type=_non_negative, default=None, help="bootstrap rounds for rating CIs (1000)")
    build.add_argument("--seed", type=int, default=None, help="bootstrap seed (0)")
    build.add_argument("--title", default=None, help="page title (default: evalboard leaderboard)")
    build.add_argument("--no-cache", action="store_true", help="re-read every samples file (no per-item score cache)")
    build.set_defaults(handler=_build)

    update = commands.add_parser("update", help="evaluate what is missing or stale (per a config), then rebuild")
    update.add_argument("--config", type=Path, default=Path("leaderboard.yaml"), help="default: leaderboard.yaml")
    update.add_argument("--dry-run", action="store_true", help="print the plan; evaluate and write nothing")
    update.add_argument("--executor", choices=["local", "ray"], default=None,
                        help="answer requests here or on a Ray cluster (default: the config's, else local)")
    update.add_argument("--ray-address", default=None, help="HOST:PORT of the Ray head for --executor ray")
    update.set_defaults(handler=_update)
