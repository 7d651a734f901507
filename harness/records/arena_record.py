"""The typed record of an arena: who met whom and how it went, as per-pair counts, plus (for judged
arenas) one line per judgment.

An arena lives in the results store as `arena/<name>/arena.json` (this record) and, when a judge made
it, `arena/<name>/judgments.jsonl` (one `Judgment` per judge call: the prompt, both answers, the
order, the judge's reply and the parsed verdict), so the leaderboard can show a battle in full.
Counts rather than battles are stored: Chatbot Arena's 1.67M human battles are 3,460 rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from evalboard.atomic import make_private_dirs, write_text_atomic
from evalboard.errors import UserError
from evalboard.records.run_record import RunUsage
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

ARENA_SCHEMA = "evalboard.arena/1"
ARENA_FOLDER = "arena"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class PairCounts(_Record):
    """Battles between two models: `a_wins` won by model_a, `b_wins` by model_b, `ties` drawn."""

    model_a: str
    model_b: str
    a_wins: float = Field(ge=0)
    b_wins: float = Field(ge=0)
    ties: float = Field(ge=0)


class JudgeQuality(_Record):
    """How much a judge's verdicts can be trusted (pairs = prompts judged in both orders)."""

    judge: str
    pairs: int
    consistent: float  # share of pairs whose two orders agree (ties included)
    ties: float  # share of pairs that ended as a tie (inconsistent pairs included)
    unparseable: float  # share of single judgments with no verdict the prompt defines
    agreement: dict[str, float] = {}  # other judge -> share of shared pairs with the same outcome


class ArenaRecord(_Record):
    """One arena: its battles as pair counts, where they came from, and who judged them."""

    schema_version: str = ARENA_SCHEMA
    name: str
    source: str  # "leaderbot", "fastchat" (imported human battles) or "judged"
    source_file: str | None = None
    prompt_set: str | None = None
    judges: list[str] = []  # the first one's verdicts make the battles; others are compared with it
    specs: dict[str, str] = {}  # candidate -> the model spec that answered (absent: a prompt set's baseline)
    baseline: str | None = None
    counts: list[PairCounts]
    judge_quality: list[JudgeQuality] = []
    # the judge's time and cost per judged pair (both orders summed); older records name them without judge_
    judge_seconds_per_battle: float | None = Field(
        default=None, validation_alias=AliasChoices("judge_seconds_per_battle", "seconds_per_battle"))
    judge_cost_per_battle_usd: float | None = Field(
        default=None, validation_alias=AliasChoices("judge_cost_per_battle_usd", "cost_per_battle_usd"))
    # candidate -> what its answers to the prompts cost, as a run records it (a baseline's stored answers: absent)
    answer_usage: dict[str, RunUsage] = {}

    @property
    def models(self) -> list[str]:
        return sorted({c.model_a for c in self.counts} | {c.model_b for c in self.counts})

    @property
    def battles(self) -> float:
        return sum(c.a_wins + c.b_wins + c.ties for c in self.counts)


class Judgment(_Record):
    """One judge call on one prompt, with the two answers in the order the judge saw them."""

    prompt_id: str
    judge: str
    order: Literal["ab", "ba"]  # ab: model_a's answer was shown first
    model_a: str
    model_b: str
    turns: list[str]
    answer_a: list[str]  # model_a's answer per turn
    answer_b: list[str]
    reply: str
    verdict: str | None  # the verdict token as the prompt defines it (None: unparseable)
    score_a: float | None  # model_a's share of the win, in [0, 1]; None when unparseable
    strong: bool = False  # a strong verdict (`>>`)
    seconds: float = 0.0
    cost_usd: float | None = None


def answer_usage_text(usage: RunUsage) -> str:
    """One candidate's answer usage in words, for the CLI and the page."""
    seconds = f"{usage.latency_sum_s:.2f} s" if usage.latency_sum_s is not None else "time not measured"
    cost = "cost unknown (no price)" if usage.cost_usd is None else f"${usage.cost_usd:.5f}"
    return (f"{usage.requests} answers, {usage.input_tokens:,} input / {usage.output_tokens:,} output tokens, "
            f"{seconds} (latencies summed), {cost}")


def arena_dir(results: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"arena name {name!r} must be a plain name (no '/', not starting with '.')")
    return Path(results) / ARENA_FOLDER / name


def save_arena(results: Path, record: ArenaRecord, judgments: list[Judgment] | None = None) -> Path:
    """Write arena.json (and judgments.jsonl) atomically; returns the arena's folder."""
    folder = arena_dir(results, record.name)
    make_private_dirs(folder)
    if judgments is not None:
        lines = "".join(j.model_dump_json() + "\n" for j in judgments)
        write_text_atomic(folder / "judgments.jsonl", lines)
    write_text_atomic(folder / "arena.json", record.model_dump_json(indent=1) + "\n")
    return folder


def load_arena(folder: Path) -> ArenaRecord:
    path = Path(folder) / "arena.json"
    try:
        return ArenaRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no arena at {folder} (no arena.json); create one with `evalboard import battles` "
                        f"or `evalboard arena battle`") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: {where}: {first['msg']}") from None


def load_judgments(folder: Path) -> list[Judgment]:
    path = Path(folder) / "judgments.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [Judgment.model_validate(json.loads(line)) for line in handle if line.strip()]


def list_arenas(results: Path) -> list[ArenaRecord]:
    """Every readable arena under a results folder, by name."""
    root = Path(results) / ARENA_FOLDER
    arenas = []
    for path in sorted(root.glob("*/arena.json")):
        try:
            arenas.append(load_arena(path.parent))
        except (UserError, OSError, ValueError):
            continue
    return arenas
