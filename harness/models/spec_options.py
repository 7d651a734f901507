"""Numeric model-spec options (`hf:PATH,max_length=4096`, `openai:MODEL,rpm=500`): one parser, so
every adapter answers a bad value with the same one-line error instead of a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalboard.errors import UserError


def number_option(options: Mapping[str, str], key: str, kind: type = int, default: Any = None, *,
                  positive: bool = False) -> Any:
    """Option `key` as an int or float (`default` when it is not given)."""
    if key not in options:
        return default
    text = options[key]
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (positive and value <= 0):
        what = ("positive " if positive else "") + ("whole number" if kind is int else "number")
        raise UserError(f"model option {key}={text!r} is not a {what}")
    return value
