"""DROP's answers and metrics as its official evaluation defines them (and lm-eval 0.4.13's
`drop` task reproduces): golds are tuples of spans (a number, a date or spans, each validated
answer too, without repeats); a prediction and a gold are compared as bags of normalised tokens
(lower case, punctuation and articles dropped, numbers as floats, split on spaces and hyphens),
spans aligned one to one (Hungarian assignment) for F1, where a gold with numbers only matches a
span containing one of them; EM is equal span sets. The best gold counts, F1 rounded to 2 places."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)
Answer = tuple[str, ...]


def gold_answers(row: dict[str, Any]) -> list[Answer]:
    """A Hub row's (`answer` and `validated_answers`) distinct golds, in order."""
    validated = row.get("validated_answers") or {"number": [], "date": [], "spans": []}
    candidates = [row["answer"], *({"number": n, "date": d, "spans": s} for n, d, s in
                                   zip(validated["number"], validated["date"], validated["spans"]))]
    golds: list[Answer] = []
    for candidate in candidates:
        answer = _as_tuple(candidate)
        if answer not in golds:
            golds.append(answer)
    return golds


def _as_tuple(answer: dict[str, Any]) -> Answer:
    if answer["number"] != "":
        return (str(answer["number"]),)
    if answer["spans"]:
        return tuple(answer["spans"])
    date = answer["date"]
    return (" ".join([date["day"], date["month"], date["year"]]).strip(),)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _normalise_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalise(span: str) -> str:
    return " ".join(t for t in (_normalise_token(token) for token in re.split(" |-", span)) if t.strip()).strip()


def _bags(answer: str | Sequence[str]) -> tuple[list[str], list[set[str]]]:
    spans = [answer] if isinstance(answer, str) else list(answer)
    normalised = [normalise(span) for span in spans]
    return normalised, [set(span.split()) for span in normalised]


def _f1(predicted: set[str], gold: set[str]) -> float:
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    return 0.0 if precision == 0.0 and recall == 0.0 else 2 * precision * recall / (precision + recall)


def _numbers_agree(gold: set[str], predicted: set[str]) -> bool:
    wanted = {word for word in gold if _is_number(word)}
    return not wanted or bool(wanted & {word for word in predicted if _is_number(word)})


def _aligned_f1(predicted: list[set[str]], gold: list[set[str]]) -> float:
    from scipy.optimize import linear_sum_assignment

    scores = np.zeros([len(gold), len(predicted)])
    for g, gold_bag in enumerate(gold):
        for p, predicted_bag in enumerate(predicted):
            if _numbers_agree(gold_bag, predicted_bag):
                scores[g, p] = _f1(predicted_bag, gold_bag)
    rows, columns = linear_sum_assignment(-scores)
    best = np.zeros([max(len(gold), len(predicted))])
    for row, column in zip(rows, columns):
        best[row] = max(best[row], scores[row, column])
    return float(round(np.mean(best), 2))


def em_and_f1(predicted: str | Sequence[str], gold: Answer) -> tuple[float, float]:
    predicted_spans, predicted_bags = _bags(predicted)
    gold_spans, gold_bags = _bags(gold)
    same = set(predicted_spans) == set(gold_spans) and len(predicted_spans) == len(gold_spans)
    return (1.0 if same else 0.0), _aligned_f1(predicted_bags, gold_bags)


def best_em_and_f1(prediction: str, golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """The maximum EM and F1 of one prediction over the golds (empty golds are skipped)."""
    em = f1 = 0.0
    for gold in golds:
        if gold[0].strip():
            this_em, this_f1 = em_and_f1([prediction], tuple(gold))
            em, f1 = max(em, this_em), max(f1, this_f1)
    return {"em": em, "f1": f1}
