"""Built-in answer filters, usable from a task file's `filters:` without Python.

Mirrors lm-eval 0.4.13's filter registry (`lm_eval/filters/`): a pipeline is a named list of
steps; each step maps the list of a document's responses to a new list (`take_first` keeps the
first response), and the pipeline's name becomes the metric key's suffix (`exact_match,strict-match`).
lm-eval's filters are not imported at run time (its task registry is slow to import); the test
suite runs both on the same responses.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any

from evalboard.errors import UserError
from pydantic import BaseModel, ConfigDict, ValidationError

INVALID = "[invalid]"  # lm-eval RegexFilter's fallback when nothing matches
Step = Callable[[list[str]], list[str]]


def regex_extract(response: str, pattern: str, group_select: int = 0, fallback: str = INVALID) -> str:
    """lm-eval's `regex` filter on one response: the `group_select`-th match of `re.findall`;
    with several groups, the first non-empty one; stripped; `fallback` when nothing matches."""
    if not isinstance(response, str):  # lm-eval scores a missing response as ""
        response = ""
    matches = re.findall(pattern, response)
    if not matches:
        return fallback
    match = matches[group_select]
    if isinstance(match, tuple):
        match = next((group for group in match if group), fallback)
    return match.strip()


_NUMBER_NOISE = re.compile(r"[,$\s]")


def normalise_number(text: str) -> str:
    """A number as written ("$1,234.50", "1,234.") in a canonical form ("1234.5"); anything that
    is not a number is returned unchanged."""
    cleaned = _NUMBER_NOISE.sub("", text).rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() else repr(value)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RegexArgs(_Args):
    regex_pattern: str = r"#### (\-?[0-9\.\,]+)"
    group_select: int = 0
    fallback: str = INVALID


class MapArgs(_Args):
    mapping_dict: dict[str, str]
    default_value: str | None = None


class NoArgs(_Args):
    pass


def _regex(args: RegexArgs) -> Step:
    re.compile(args.regex_pattern)  # a bad pattern fails when the task file is read
    return lambda responses: [regex_extract(r, args.regex_pattern, args.group_select, args.fallback) for r in responses]


def _each(function: Callable[[str], str]) -> Callable[[NoArgs], Step]:
    return lambda _args: lambda responses: [function(r) for r in responses]


def _map(args: MapArgs) -> Step:
    return lambda responses: [args.mapping_dict.get(r, args.default_value or "") for r in responses]


def _take_first(_args: NoArgs) -> Step:
    return lambda responses: responses[:1]


_PUNCTUATION = str.maketrans("", "", string.punctuation)

# name -> (argument model, step builder)
FILTERS: dict[str, tuple[type[_Args], Callable[[Any], Step]]] = {
    "regex": (RegexArgs, _regex),
    "take_first": (NoArgs, _take_first),
    "lowercase": (NoArgs, _each(str.lower)),
    "uppercase": (NoArgs, _each(str.upper)),
    "remove_whitespace": (NoArgs, _each(str.strip)),  # lm-eval's WhitespaceFilter strips both ends
    "remove_punctuation": (NoArgs, _each(lambda r: r.translate(_PUNCTUATION))),
    "normalise_number": (NoArgs, _each(normalise_number)),
    "map": (MapArgs, _map),
}


def build_pipeline(task: str, pipeline: str, steps: Sequence[dict[str, Any]]) -> Step:
    """The composed steps of one named pipeline, or a one-line error naming the bad step."""
    built: list[Step] = []
    for index, step in enumerate(steps):
        arguments = dict(step)
        name = arguments.pop("function")
        if name not in FILTERS:
            raise UserError(f"task {task}: filter {pipeline!r} step {index}: unknown function {name!r}; "
                            f"built-in filters: {', '.join(sorted(FILTERS))}")
        model, builder = FILTERS[name]
        try:
            built.append(builder(model.model_validate(arguments)))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise UserError(f"task {task}: filter {pipeline!r} step {index} ({name}): `{field}`: {first['msg']}; "
                            f"allowed: {', '.join(model.model_fields) or 'no arguments'}") from None
        except re.error as exc:
            raise UserError(f"task {task}: filter {pipeline!r} step {index}: bad regex ({exc})") from None

    def run(responses: list[str]) -> list[str]:
        for apply in built:
            responses = apply(responses)
        return responses

    return run
