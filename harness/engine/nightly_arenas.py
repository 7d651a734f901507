"""The nightly update's arena step (`arenas:` in leaderboard.yaml, docs/nightly.md): after the
benchmark cells, each arena gets the board's models it does not hold yet.

- No arena yet: its models battle as the entry says (`pairs: all`, or each against `baseline:`).
- An arena already there: each new model is placed (`pairs: place`): it plays `opponents:` of the
  rated models, and no old pair is judged again, so adding a model costs its own battles only.
- Nothing new: nothing is asked (answers and judgments are cached besides).

Models are named in the arena by their board label, so the page's arena rows and benchmark rows
say the same names.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from evalboard.errors import UserError
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StrictStr, field_validator


class ArenaEntry(BaseModel):
    """An `arenas:` entry: a prompt set, its judge(s), and which of the board's models play."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: StrictStr = Field(json_schema_extra={"allowed": "mt-bench, arena-hard-v2.0, alpaca-eval or a prompt-set file"})
    judge: list[StrictStr] = Field(min_length=1)
    name: StrictStr | None = None  # default: the prompt set's name
    models: list[StrictStr] | None = None  # board labels; default: every model of the board
    pairs: Literal["all", "baseline"] = "all"  # how a new arena's first models meet
    baseline: StrictStr | None = None
    opponents: PositiveInt = 4
    limit: PositiveInt | None = None
    max_new_tokens: PositiveInt | None = None
    judge_tokens: PositiveInt | None = None
    judge_mode: Literal["generate", "likelihood"] = "generate"

    @field_validator("judge", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def arena_name(self) -> str:
        return self.name or self.prompts.replace("/", "_")


def _held(results: Path, name: str) -> set[str] | None:
    """The models an arena already rates (None: no arena yet)."""
    from evalboard.records.arena_record import arena_dir, load_arena

    folder = arena_dir(results, name)
    if not (folder / "arena.json").exists():
        return None
    return set(load_arena(folder).models)


def _new_models(entry: ArenaEntry, labels: Sequence[str], results: Path) -> tuple[set[str] | None, list[str]]:
    wanted = entry.models if entry.models is not None else list(labels)
    unknown = sorted(set(wanted) - set(labels))
    if unknown:
        raise UserError(f"arena {entry.arena_name}: {', '.join(unknown)} not among the board's model labels")
    held = _held(results, entry.arena_name)
    return held, [label for label in wanted if held is None or label not in held]


def describe_arenas(arenas: Sequence[ArenaEntry], labels: Sequence[str], results: Path) -> list[str]:
    """The dry run's lines: what each arena's step would do."""
    lines = []
    for entry in arenas:
        held, new = _new_models(entry, labels, results)
        what = ("up to date" if not new else
                f"would {'place' if held is not None else 'start with'} {', '.join(new)}")
        lines.append(f"arena {entry.arena_name} ({entry.prompts}, judge {entry.judge[0]}): {what}")
    return lines


def update_arenas(arenas: Sequence[ArenaEntry], models: dict[str, str], results: Path, cache_path: Path | None,
                  log: TextIO = sys.stdout) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Each arena brought up to date with the board's models (label -> spec). Returns the
    (arena, model) pairs that battled and the failures (one failing arena does not stop the others)."""
    from evalboard.arena.battles import ArenaConfig, run_arena

    battled: list[tuple[str, str]] = []
    failures: list[dict[str, Any]] = []
    for entry in arenas:
        name = entry.arena_name
        try:
            held, new = _new_models(entry, list(models), results)
            if not new:
                print(f"arena {name}: up to date ({len(held or ())} models)", file=log, flush=True)
                continue
            pairs = entry.pairs if held is None else "place"
            if held is None and pairs == "all" and len(new) + (entry.baseline is not None) < 2:
                print(f"arena {name}: waiting for a second model", file=log, flush=True)
                continue
            print(f"arena {name}: {'placing' if pairs == 'place' else 'starting with'} {', '.join(new)}",
                  file=log, flush=True)
            outcome = run_arena(ArenaConfig(
                prompt_set=entry.prompts, name=name, models=[models[label] for label in new],
                labels={models[label]: label for label in new}, judges=list(entry.judge), results=results,
                baseline=entry.baseline, pairs=pairs, opponents=entry.opponents, limit=entry.limit,
                max_new_tokens=entry.max_new_tokens, judge_tokens=entry.judge_tokens, cache_path=cache_path,
                judge_mode=entry.judge_mode))
            battled += [(name, label) for label in new]
            print(f"arena {name}: judged {outcome.judged_pairs} pairs ({outcome.fresh_judge_calls} new judge "
                  f"calls), {outcome.record.battles:,.0f} battles", file=log, flush=True)
        except Exception as exc:  # recorded and shown on the page, as a failing model's cells are
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            failures.append({"model": f"(arena {name})", "tasks": [entry.prompts], "error": first})
            print(f"arena {name}: FAILED: {first}", file=log, flush=True)
            if not isinstance(exc, UserError):
                traceback.print_exc(file=log)
    return battled, failures
