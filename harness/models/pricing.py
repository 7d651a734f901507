"""Dollar cost of API requests: a dated table of list prices, overridable by the user's own file.

The built-in prices are the providers' public list prices (USD per 1M tokens, standard tier, no
batch or cache discounts) AS OF THE DATE BELOW, as the authors knew them: check the provider's
pricing page before trusting a bill to them, and put current numbers in a file if they moved:

    # prices.yaml (or .json): EVALBOARD_PRICES=prices.yaml, or cost_usd(..., prices_file=...)
    as_of: "2026-01-15"
    openai:
      gpt-4o: {input: 2.50, output: 10.00}
    anthropic:
      claude-sonnet-4-5: {input: 3.00, output: 15.00}

A model is looked up by its exact name, then (for dated snapshots such as
`claude-sonnet-4-5-20250929` or `gpt-4o-2024-08-06`) by the name without the date or a `-latest`
suffix; a snapshot priced differently from its alias is listed on its own. No match, no price:
`cost_usd` returns None rather than a guess.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalboard.errors import UserError

PRICES_ENV = "EVALBOARD_PRICES"
BUILTIN_AS_OF = "2025-11-30"


@dataclass(frozen=True)
class Price:
    input_per_mtok: float  # USD per 1M input tokens
    output_per_mtok: float  # USD per 1M output tokens
    as_of: str  # the date the numbers were read
    source: str  # "built-in (check the provider)" or the override file's path

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


# (input, output) USD per 1M tokens; list prices as of BUILTIN_AS_OF, check the provider.
_BUILTIN: dict[str, dict[str, tuple[float, float]]] = {
    "openai": {
        "gpt-5": (1.25, 10.00),
        "gpt-5-mini": (0.25, 2.00),
        "gpt-5-nano": (0.05, 0.40),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-2024-05-13": (5.00, 15.00),  # the first snapshot kept its launch price
        "gpt-4o-mini": (0.15, 0.60),
        "o3": (2.00, 8.00),
        "o3-mini": (1.10, 4.40),
        "o4-mini": (1.10, 4.40),
        "gpt-3.5-turbo": (0.50, 1.50),
    },
    "anthropic": {
        "claude-opus-4-5": (5.00, 25.00),
        "claude-opus-4-1": (15.00, 75.00),
        "claude-opus-4-0": (15.00, 75.00),
        "claude-opus-4": (15.00, 75.00),
        "claude-sonnet-4-5": (3.00, 15.00),
        "claude-sonnet-4-0": (3.00, 15.00),
        "claude-sonnet-4": (3.00, 15.00),
        "claude-3-7-sonnet": (3.00, 15.00),
        "claude-haiku-4-5": (1.00, 5.00),
        "claude-3-5-haiku": (0.80, 4.00),
        "claude-3-haiku": (0.25, 1.25),
    },
}

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")

PriceTable = dict[str, dict[str, Price]]


def builtin_prices() -> PriceTable:
    source = "built-in list price (check the provider)"
    return {
        provider: {model: Price(i, o, BUILTIN_AS_OF, source) for model, (i, o) in models.items()}
        for provider, models in _BUILTIN.items()
    }


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"cannot read the price file {path}: {exc.strerror}; check {PRICES_ENV}"
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml and json raise different types; both mean "not parseable"
        raise UserError(
            f"the price file {path} is not valid {path.suffix[1:] or 'JSON'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"the price file {path} must map provider -> model -> {{input, output}}")
    return data


def _parse_overrides(path: Path, data: dict[str, Any]) -> PriceTable:
    as_of = str(data.get("as_of", "unknown date"))
    table: PriceTable = {}
    for provider, models in data.items():
        if provider == "as_of":
            continue
        if not isinstance(models, dict):
            raise UserError(f"the price file {path}: {provider!r} must map model names to prices")
        for model, entry in models.items():
            try:
                price = Price(float(entry["input"]), float(entry["output"]), as_of, str(path))
            except (TypeError, KeyError, ValueError):
                raise UserError(
                    f"the price file {path}: {provider}/{model} needs numeric 'input' and 'output' "
                    "(USD per 1M tokens)"
                ) from None
            table.setdefault(str(provider).lower(), {})[str(model)] = price
    return table


@lru_cache(maxsize=8)
def _load(path: str | None, mtime: float | None) -> PriceTable:
    table = builtin_prices()
    if path is not None:
        file = Path(path)
        for provider, models in _parse_overrides(file, _read_file(file)).items():
            table.setdefault(provider, {}).update(models)
    return table


def load_prices(prices_file: str | os.PathLike[str] | None = None) -> PriceTable:
    """The built-in table with the user's file (argument, else $EVALBOARD_PRICES) laid over it."""
    path = prices_file if prices_file is not None else os.environ.get(PRICES_ENV) or None
    if path is None:
        return _load(None, None)
    resolved = str(Path(path).expanduser())
    try:
        mtime = os.stat(resolved).st_mtime
    except OSError:
        mtime = None  # _read_file reports the problem
    return _load(resolved, mtime)


def price_for(
    provider: str, model: str, *, prices_file: str | os.PathLike[str] | None = None
) -> Price | None:
    models = load_prices(prices_file).get(provider.lower(), {})
    if model in models:
        return models[model]
    alias = _SNAPSHOT_SUFFIX.sub("", model)
    return models.get(alias)


def cost_usd(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    prices_file: str | os.PathLike[str] | None = None,
) -> float | None:
    """USD for one request, or None when the model has no known price (never a guess)."""
    price = price_for(provider, model, prices_file=prices_file)
    return None if price is None else price.cost(input_tokens, output_tokens)
