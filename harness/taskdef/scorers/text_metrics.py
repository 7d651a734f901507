"""Built-in metrics on a filtered answer and the gold text, usable from a task file's `metrics:`.

- `exact_match`: lm-eval 0.4.13's `exact_match` (ported there from HF evaluate) with its options
  `ignore_case`, `ignore_punctuation`, `ignore_numbers` and `regexes_to_ignore`, numpy quirks
  included (lm-eval compares numpy string arrays).
- `f1`: the bag-of-words F1 of SQuAD's official evaluation (lower case, no punctuation, no
  articles, whitespace tokens), the usual reading-comprehension F1.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from evalboard.errors import UserError
from pydantic import BaseModel, ConfigDict, ValidationError

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)
_DIGITS_TABLE = str.maketrans("", "", string.digits)


class ExactMatchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    ignore_case: bool = False
    ignore_punctuation: bool = False
    ignore_numbers: bool = False
    regexes_to_ignore: tuple[str, ...] = ()


class F1Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def normalise_for_exact_match(text: str, options: ExactMatchArgs) -> str:
    """The text lm-eval's exact_match compares."""
    # lm-eval holds these strings in numpy arrays, which drop trailing NULs after every step.
    for pattern in options.regexes_to_ignore:
        text = re.sub(pattern, "", text).rstrip("\0")
    text = text.rstrip("\0")
    if options.ignore_case:
        # numpy's lower() as lm-eval uses it: within the array's fixed width, so a character whose
        # lower case is longer (e.g. "İ") gets truncated, unlike with str.lower().
        text = str(np.char.lower(np.asarray([text]))[0])
    if options.ignore_punctuation:
        text = text.translate(_PUNCTUATION_TABLE).rstrip("\0")
    if options.ignore_numbers:
        text = text.translate(_DIGITS_TABLE).rstrip("\0")
    return text


def exact_match(prediction: str, gold: str, options: ExactMatchArgs = ExactMatchArgs()) -> float:
    same = normalise_for_exact_match(prediction, options) == normalise_for_exact_match(gold, options)
    return 1.0 if same else 0.0


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _bag(text: str) -> list[str]:
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION_TABLE))
    return text.split()


def f1(prediction: str, gold: str, _options: F1Args = F1Args()) -> float:
    predicted, wanted = _bag(prediction), _bag(gold)
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


Metric = Callable[[str, str], float]
METRICS: dict[str, tuple[type[BaseModel], Callable[..., float]]] = {
    "exact_match": (ExactMatchArgs, exact_match),
    "f1": (F1Args, f1),
}


def build_metric(task: str, name: str, arguments: dict[str, Any]) -> Metric:
    """One configured metric, or a one-line error naming what is wrong and what is allowed."""
    if name not in METRICS:
        raise UserError(f"task {task}: unknown metric {name!r}; built-in metrics: {', '.join(sorted(METRICS))}")
    model, function = METRICS[name]
    try:
        options = model.model_validate(_lists_as_tuples(arguments))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise UserError(f"task {task}: metric {name}: `{field}`: {first['msg']}; "
                        f"allowed: {', '.join(model.model_fields) or 'no options'}") from None
    return lambda prediction, gold: function(prediction, gold, options)


def _lists_as_tuples(arguments: dict[str, Any]) -> dict[str, Any]:
    # YAML gives lists; the strict option models hold tuples (hashable, immutable).
    return {key: tuple(value) if isinstance(value, list) else value for key, value in arguments.items()}

