"""Human battles from elsewhere -> an arena record of per-pair counts.

Two formats:
- leaderbot's Chatbot Arena counts (`leaderbot/data/chatbotarena_*.json`): `models` (names), `X`
  (pairs of indices into models) and `Y` (per pair: wins of the first, wins of the second, ties, and
  optionally ties where both were bad).
- FastChat's battle log (`clean_battle_*.json`, a JSON list, or JSON lines): one object per battle
  with `model_a`, `model_b` and `winner` in {"model_a", "model_b", "tie", "tie (bothbad)"}; other
  keys are ignored. Both kinds of tie count as ties, as FastChat's ratings count them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Literal

from evalboard.errors import UserError
from evalboard.records.arena_record import ArenaRecord, PairCounts
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator


class LeaderbotCounts(BaseModel):
    """leaderbot's file: per-pair win/loss/tie(/tie-bothbad) counts."""

    model_config = ConfigDict(extra="ignore")

    models: list[str]
    X: list[tuple[int, int]]
    Y: list[list[float]]

    @model_validator(mode="after")
    def _shapes(self) -> LeaderbotCounts:
        if len(self.X) != len(self.Y):
            raise ValueError(f"X has {len(self.X)} pairs but Y has {len(self.Y)} rows")
        for row, (pair, counts) in enumerate(zip(self.X, self.Y)):
            if len(counts) not in (3, 4) or min(counts) < 0:
                raise ValueError(f"Y[{row}] must be 3 or 4 non-negative counts, got {counts}")
            if not all(0 <= k < len(self.models) for k in pair) or pair[0] == pair[1]:
                raise ValueError(f"X[{row}] = {list(pair)} is not a pair of two of the {len(self.models)} models")
        return self


class FastChatBattle(BaseModel):
    """One line of FastChat's battle log (the fields the ratings use)."""

    model_config = ConfigDict(extra="ignore")

    model_a: str = Field(min_length=1)
    model_b: str = Field(min_length=1)
    winner: Literal["model_a", "model_b", "tie", "tie (bothbad)"]


_BATTLES = TypeAdapter(list[FastChatBattle])


def _first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the file"
    return f"{where}: {first['msg']}"


def _from_leaderbot(data: dict[str, object], path: Path) -> list[PairCounts]:
    try:
        parsed = LeaderbotCounts.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: not a leaderbot counts file ({_first_problem(exc)})") from None
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for (i, j), y in zip(parsed.X, parsed.Y):
        a, b = parsed.models[i], parsed.models[j]
        wins_a, wins_b, ties = y[0], y[1], sum(y[2:])
        if a > b:
            a, b, wins_a, wins_b = b, a, wins_b, wins_a
        cell = totals[(a, b)]
        cell[0] += wins_a
        cell[1] += wins_b
        cell[2] += ties
    return _pair_rows(totals)


def _from_fastchat(text: str, path: Path) -> list[PairCounts]:
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            battles = _BATTLES.validate_json(text)
        else:
            battles = [FastChatBattle.model_validate_json(line) for line in text.split("\n") if line.strip()]
    except ValidationError as exc:
        raise UserError(f"{path}: not a FastChat battle log ({_first_problem(exc)})") from None
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for battle in battles:
        a, b, winner = battle.model_a, battle.model_b, battle.winner
        if a == b:
            continue  # a model against itself carries no information about ratings
        if a > b:
            a, b = b, a
            winner = {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner)  # type: ignore[assignment]
        cell = totals[(a, b)]
        cell[0 if winner == "model_a" else 1 if winner == "model_b" else 2] += 1
    return _pair_rows(totals)


def _pair_rows(totals: dict[tuple[str, str], list[float]]) -> list[PairCounts]:
    return [PairCounts(model_a=a, model_b=b, a_wins=w[0], b_wins=w[1], ties=w[2])
            for (a, b), w in sorted(totals.items()) if sum(w) > 0]


def read_battles(path: str | Path, name: str) -> ArenaRecord:
    """An arena record of the battles in `path` (either format, told apart by its shape)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path} could not be read ({exc.strerror})") from None
    stripped = text.lstrip()
    if stripped.startswith("{") and not _looks_like_json_lines(stripped):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, dict) and "X" in data:
            counts, source = _from_leaderbot(data, path), "leaderbot"
        else:
            counts, source = _from_fastchat(text, path), "fastchat"
    else:
        counts, source = _from_fastchat(text, path), "fastchat"
    if not counts:
        raise UserError(f"{path} holds no battles between two different models")
    return ArenaRecord(name=name, source=source, source_file=str(path.resolve()), counts=counts)


def _looks_like_json_lines(text: str) -> bool:
    first = text.split("\n", 1)[0]
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and "model_a" in value
