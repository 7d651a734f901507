"""The dated price table and user overrides (evalboard.models.pricing)."""

from __future__ import annotations

import json

import pytest
from evalboard.errors import UserError
from evalboard.models.pricing import BUILTIN_AS_OF, cost_usd, price_for


def test_builtin_prices_are_dated_and_labelled():
    price = price_for("openai", "gpt-4o")
    assert (price.input_per_mtok, price.output_per_mtok, price.as_of) == (
        2.50,
        10.00,
        BUILTIN_AS_OF,
    )
    assert "check the provider" in price.source
    assert cost_usd("anthropic", "claude-sonnet-4-5", 1_000_000, 1_000_000) == pytest.approx(18.0)


def test_dated_snapshots_use_their_alias_unless_listed():
    assert price_for("anthropic", "claude-sonnet-4-5-20250929") == price_for(
        "anthropic", "claude-sonnet-4-5"
    )
    assert price_for("openai", "gpt-4o-2024-08-06") == price_for("openai", "gpt-4o")
    assert price_for("openai", "gpt-4o-2024-05-13").input_per_mtok == 5.00  # its own price


def test_unknown_models_have_no_price():
    assert cost_usd("openai", "gpt-4o-mini-but-not-really", 10, 10) is None
    assert cost_usd("openai", "gpt-4", 10, 10) is None  # no prefix guessing
    assert cost_usd("nobody", "gpt-4o", 10, 10) is None


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_user_file_overrides_and_extends(tmp_path, monkeypatch, suffix):
    table = {
        "as_of": "2031-02-03",
        "openai": {"gpt-4o": {"input": 1.0, "output": 2.0}, "my-model": {"input": 3, "output": 4}},
    }
    path = tmp_path / f"prices{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(table))
    else:
        import yaml

        path.write_text(yaml.safe_dump(table))
    assert cost_usd("openai", "gpt-4o", 1_000_000, 0, prices_file=path) == 1.0
    assert price_for("openai", "my-model", prices_file=path).as_of == "2031-02-03"
    assert (
        price_for("openai", "gpt-4o-mini", prices_file=path).input_per_mtok == 0.15
    )  # built-in kept
    monkeypatch.setenv("EVALBOARD_PRICES", str(path))
    assert cost_usd("openai", "my-model", 0, 1_000_000) == 4.0


def test_bad_price_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        cost_usd("openai", "gpt-4o", 1, 1, prices_file=tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(UserError, match="not valid"):
        cost_usd("openai", "gpt-4o", 1, 1, prices_file=broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"openai": {"gpt-4o": {"input": "cheap"}}}))
    with pytest.raises(UserError, match="numeric"):
        cost_usd("openai", "gpt-4o", 1, 1, prices_file=wrong)
