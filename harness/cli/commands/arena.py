"""`evalboard arena ...`: rate an arena's battles (and, with a judge, make them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalboard.errors import UserError


def parse_anchor(text: str | None) -> tuple[str, float] | None:
    """MODEL=RATING -> (model, rating)."""
    if text is None:
        return None
    model, sep, value = text.rpartition("=")
    try:
        rating = float(value)
    except ValueError:
        rating = float("nan")
    if not sep or not model or rating != rating:
        raise UserError(f"--anchor {text!r} must be MODEL=RATING, e.g. mixtral-8x7b-instruct-v0.1=1114")
    return model, rating


def _ratings(args: argparse.Namespace) -> int:
    from evalboard.leaderboard.arena import arena_ratings
    from evalboard.records.arena_record import arena_dir, load_arena

    record = load_arena(arena_dir(args.results, args.name))
    anchor = parse_anchor(args.anchor)
    if anchor is not None and anchor[0] not in record.models:
        raise UserError(f"anchor model {anchor[0]!r} has no battles in arena {args.name!r}")
    table = arena_ratings(record, anchor, rounds=args.rounds, seed=args.seed)
    print(f"arena {record.name}: {record.battles:,.0f} battles, {len(record.models)} models ({record.source})")
    print(f"{'rank':>4}  {'model':<40} {'rating':>8}  {'95% CI':>17}  {'battles':>9}")
    for row in table.itertuples(index=False):
        ci = "" if row.ci_low != row.ci_low else f"[{row.ci_low:7.1f}, {row.ci_high:7.1f}]"
        print(f"{row.rank:>4}  {row.model:<40} {row.rating:8.2f}  {ci:>17}  {row.battles:>9,}")
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("arena", help="head-to-head battles rated like Chatbot Arena")
    actions = parser.add_subparsers(dest="arena_action", required=True)
    ratings = actions.add_parser("ratings", help="Bradley–Terry ratings of an arena's battles, with bootstrap CIs")
    ratings.add_argument("name", help="the arena (results/arena/NAME)")
    ratings.add_argument("--results", type=Path, default=Path("results"), help="results store (default: results/)")
    ratings.add_argument("--anchor", default=None, metavar="MODEL=RATING",
                         help="pin one model's rating (default: FastChat's mixtral-8x7b-instruct-v0.1=1114 "
                              "when present, else a mean of 1000)")
    ratings.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (0: no intervals)")
    ratings.add_argument("--seed", type=int, default=0)
    ratings.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")
    ratings.set_defaults(handler=_ratings)
