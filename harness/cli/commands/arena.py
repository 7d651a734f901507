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
    if len(record.models) < 2:
        raise UserError(f"arena {args.name!r} has no battles to rate yet (see its judgments.jsonl)")
    table = arena_ratings(record, anchor, rounds=args.rounds, seed=args.seed)
    print(f"arena {record.name}: {record.battles:,.0f} battles, {len(record.models)} models ({record.source})")
    print(f"{'rank':>4}  {'model':<40} {'rating':>8}  {'95% CI':>17}  {'battles':>9}")
    for row in table.itertuples(index=False):
        ci = "" if row.ci_low != row.ci_low else f"[{row.ci_low:7.1f}, {row.ci_high:7.1f}]"
        print(f"{row.rank:>4}  {row.model:<40} {row.rating:8.2f}  {ci:>17}  {row.battles:>9,}")
    for q in record.judge_quality:
        agree = "".join(f", agreement with {k}: {v:.0%}" for k, v in q.agreement.items())
        print(f"judge {q.judge}: {q.pairs} pairs, position-consistent {q.consistent:.0%}, ties {q.ties:.0%}, "
              f"unparseable {q.unparseable:.0%}{agree}")
    if record.baseline is not None and record.baseline in record.models:
        from evalboard.leaderboard.arena import win_rate_vs

        print(f"win rate against {record.baseline} (ties half, 95% CI):")
        for model, rate in win_rate_vs(record, record.baseline, rounds=max(args.rounds, 100), seed=args.seed).iterrows():
            print(f"  {model:<40} {rate.win_rate:6.1%}  [{rate.ci_low:6.1%}, {rate.ci_high:6.1%}]  {int(rate.battles)} battles")
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def _battle(args: argparse.Namespace) -> int:
    from evalboard.arena.battles import ArenaConfig, run_arena
    from evalboard.models.adapters.base import AdapterSettings
    from evalboard.paths import response_cache_path
    from evalboard.records.arena_record import answer_usage_text

    models = list(args.models or [])
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    config = ArenaConfig(
        prompt_set=args.prompts, name=args.name or args.prompts.replace("/", "_"), models=models,
        judges=list(args.judge or []), results=args.results, baseline=args.baseline, pairs=args.pairs,
        opponents=args.opponents, limit=args.limit, max_new_tokens=args.max_new_tokens,
        judge_tokens=args.judge_tokens, cache_path=None if args.no_cache else response_cache_path(),
        settings=AdapterSettings(batch_size=args.batch_size), judge_mode=args.judge_mode,
    )
    outcome = run_arena(config)
    record = outcome.record
    print(f"arena {record.name}: judged {outcome.judged_pairs} pairs in both orders "
          f"({outcome.fresh_judge_calls} new judge calls), {record.battles:,.0f} battles in the arena")
    for q in record.judge_quality:
        agree = "".join(f", agreement with {k}: {v:.0%}" for k, v in q.agreement.items())
        print(f"judge {q.judge}: {q.pairs} pairs, position-consistent {q.consistent:.0%}, ties {q.ties:.0%}, "
              f"unparseable {q.unparseable:.0%}{agree}")
    if record.judge_seconds_per_battle is not None:
        cost = "" if not record.judge_cost_per_battle_usd else f", ${record.judge_cost_per_battle_usd:.5f} per battle"
        wall = f"; this run's judging took {outcome.judge_seconds:.1f} s wall" if outcome.fresh_judge_calls else ""
        print(f"judge latency {record.judge_seconds_per_battle:.2f} s per battle (both orders, summed){cost}{wall}")
    for model, usage in record.answer_usage.items():
        print(f"candidate {model}: {answer_usage_text(usage)}")
    print(f"ratings: evalboard arena ratings {record.name}" +
          ("" if args.results == Path("results") else f" --results {args.results}"))
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

    battle = actions.add_parser("battle", help="candidates answer a prompt set, a judge compares them pairwise")
    battle.add_argument("--prompts", required=True, help="a prompt set (mt-bench, arena-hard-v2.0, alpaca-eval) or its file")
    battle.add_argument("--models", nargs="+", default=[], help="candidate model specs (specs may hold commas)")
    battle.add_argument("--judge", action="append", help="judge model spec (any adapter); twice for two judges")
    battle.add_argument("--baseline", default=None, help="a prompt set's baseline answers (e.g. o3-mini-2025-01-31) or a spec")
    battle.add_argument("--pairs", choices=["all", "baseline", "place"], default="all",
                        help="all pairs; each against --baseline; or place new --models in an existing arena")
    battle.add_argument("--opponents", type=int, default=4, help="with --pairs place: opponents per new model")
    battle.add_argument("--limit", type=int, default=None, help="the first N prompts only")
    battle.add_argument("--name", default=None, help="the arena's name (default: the prompt set's)")
    battle.add_argument("--results", type=Path, default=Path("results"), help="results store (default: results/)")
    battle.add_argument("--max-new-tokens", type=int, default=None, help="candidates' answer length (default: the set's)")
    battle.add_argument("--judge-tokens", type=int, default=None,
                        help="the judge's reply length (default: the set's, as its reference runs its judge)")
    battle.add_argument("--judge-mode", choices=["generate", "likelihood"], default="generate",
                        help="how the judge decides: generate (its reply, parsed as the prompt defines; the reference way) or "
                        "likelihood (the most probable of the prompt's verdicts: for small local judges)")
    battle.add_argument("--batch-size", type=int, default=8)
    battle.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    battle.set_defaults(handler=_battle)
