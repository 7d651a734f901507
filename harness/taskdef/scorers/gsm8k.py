"""GSM8K answer extraction and exact match, identical to lm-eval 0.4.13's tasks.

lm-eval defines three GSM8K tasks (`lm_eval/tasks/gsm8k/gsm8k*.yaml`) that differ in prompt, target
and the "strict" answer pattern; all share the "flexible" pattern and one exact-match metric:

- gsm8k: "Question: {question}\\nAnswer:", 5 random few-shot examples from the train split;
  target = the whole solution (the metric's "(?s).*#### " strips all but N); strict = "#### N".
- gsm8k_cot: "Q: {question}\\nA:", 8 fixed chain-of-thought exemplars (`cot_fewshot_exemplars`);
  target = the number after "####"; strict = "The answer is N.".
- gsm8k_cot_zeroshot: "Q: {question}\\nA: Let's think step by step.", no examples;
  target = the whole solution; strict = "The answer is N.".

Per response, `score_gsm8k` returns lm-eval's two result keys ("<metric>,<filter>"):
    "exact_match,strict-match" and "exact_match,flexible-extract", each 1.0 or 0.0;
the task score is their mean over docs. `extract_answers` gives the filtered answers for logs.

The strict patterns are reproduced verbatim, quirks included: in "The answer is (...)." the final
`.` is any character, so "The answer is 18" at the very end of a response extracts "1".
"""

from __future__ import annotations

import importlib.util
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from evalboard.errors import UserError

INVALID = "[invalid]"  # lm-eval RegexFilter's fallback when nothing matches
STRICT_FILTER = "strict-match"
FLEXIBLE_FILTER = "flexible-extract"
STRICT_KEY = f"exact_match,{STRICT_FILTER}"
FLEXIBLE_KEY = f"exact_match,{FLEXIBLE_FILTER}"

_HASH_ANSWER = r"#### (\-?[0-9\.\,]+)"
_THE_ANSWER_IS = r"The answer is (\-?[0-9\.\,]+)."
# The last number-like run; a lone digit only matches through the second alternative.
FLEXIBLE_PATTERN = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
FLEXIBLE_GROUP_SELECT = -1

# The metric_list settings shared by all three task files.
EXACT_MATCH_REGEXES_TO_IGNORE: tuple[str, ...] = (",", r"\$", "(?s).*#### ", r"\.$")
EXACT_MATCH_IGNORE_CASE = True
EXACT_MATCH_IGNORE_PUNCTUATION = False
_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class Gsm8kVariant:
    """What differs between lm-eval's GSM8K tasks (all generate greedily)."""

    name: str
    prompt_template: str  # `{question}` is replaced by the doc's question
    strict_pattern: str
    target_is_final_number: bool  # False: the whole solution text is the target
    num_fewshot: int
    fewshot_source: str  # "train" (random examples of the train split) | "cot_exemplars" | "none"
    until: tuple[str, ...]

    def doc_to_text(self, doc: Mapping[str, Any]) -> str:
        return self.prompt_template.format(question=doc["question"])


_COT_STOPS = ("Q:", "</s>", "<|im_end|>")
VARIANTS: dict[str, Gsm8kVariant] = {
    v.name: v
    for v in (
        Gsm8kVariant(
            name="gsm8k",
            prompt_template="Question: {question}\nAnswer:",
            strict_pattern=_HASH_ANSWER,
            target_is_final_number=False,
            num_fewshot=5,
            fewshot_source="train",
            until=("Question:", "</s>", "<|im_end|>"),
        ),
        Gsm8kVariant(
            name="gsm8k_cot",
            prompt_template="Q: {question}\nA:",
            strict_pattern=_THE_ANSWER_IS,
            target_is_final_number=True,
            num_fewshot=8,
            fewshot_source="cot_exemplars",
            until=_COT_STOPS,
        ),
        Gsm8kVariant(
            name="gsm8k_cot_zeroshot",
            prompt_template="Q: {question}\nA: Let's think step by step.",
            strict_pattern=_THE_ANSWER_IS,
            target_is_final_number=False,
            num_fewshot=0,
            fewshot_source="none",
            until=_COT_STOPS,
        ),
    )
}


def get_variant(variant: str | Gsm8kVariant) -> Gsm8kVariant:
    if isinstance(variant, Gsm8kVariant):
        return variant
    try:
        return VARIANTS[variant]
    except KeyError:
        raise UserError(
            f"Unknown GSM8K variant {variant!r}: use one of {', '.join(VARIANTS)}."
        ) from None


def regex_extract(
    response: str, pattern: str, group_select: int = 0, fallback: str = INVALID
) -> str:
    """lm-eval's `regex` filter on one response: the `group_select`-th match of `re.findall`; with
    several groups, the first non-empty one; stripped; `fallback` when nothing matches."""
    if not isinstance(response, str):  # lm-eval scores a missing response as ""
        response = ""
    matches = re.findall(pattern, response)
    if not matches:
        return fallback
    match = matches[group_select]
    if isinstance(match, tuple):
        match = next((group for group in match if group), fallback)
    return match.strip()


def strict_match(response: str, variant: str | Gsm8kVariant) -> str:
    """The "strict-match" filter: the first answer in the variant's own answer format."""
    return regex_extract(response, get_variant(variant).strict_pattern)


def flexible_extract(response: str) -> str:
    """The "flexible-extract" filter: the last number-like string anywhere in the response."""
    return regex_extract(response, FLEXIBLE_PATTERN, group_select=FLEXIBLE_GROUP_SELECT)


def extract_answers(response: str, variant: str | Gsm8kVariant) -> dict[str, str]:
    """Both filters' outputs, keyed by lm-eval's filter names."""
    return {
        STRICT_FILTER: strict_match(response, variant),
        FLEXIBLE_FILTER: flexible_extract(response),
    }


def normalise_for_exact_match(
    text: str,
    regexes_to_ignore: Iterable[str] = EXACT_MATCH_REGEXES_TO_IGNORE,
    ignore_case: bool = EXACT_MATCH_IGNORE_CASE,
    ignore_punctuation: bool = EXACT_MATCH_IGNORE_PUNCTUATION,
) -> str:
    """The text lm-eval's exact_match (lm_eval/api/metrics.py, ported from HF evaluate) compares."""
    # lm-eval holds these strings in numpy arrays, which drop trailing NULs after every step.
    for pattern in regexes_to_ignore:
        text = re.sub(pattern, "", text).rstrip("\0")
    text = text.rstrip("\0")
    if ignore_case:
        # numpy's lower() as lm-eval uses it: within the array's fixed width, so a character whose
        # lower case is longer (e.g. "İ") gets truncated, unlike with str.lower().
        text = str(np.char.lower(np.asarray([text]))[0])
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION_TABLE).rstrip("\0")
    return text


def exact_match(
    prediction: str,
    gold: str,
    regexes_to_ignore: Iterable[str] = EXACT_MATCH_REGEXES_TO_IGNORE,
    ignore_case: bool = EXACT_MATCH_IGNORE_CASE,
    ignore_punctuation: bool = EXACT_MATCH_IGNORE_PUNCTUATION,
) -> float:
    """1.0 if prediction and gold are equal after lm-eval's normalisation, else 0.0.

    The defaults are GSM8K's metric settings."""
    regexes = tuple(regexes_to_ignore)
    same = normalise_for_exact_match(prediction, regexes, ignore_case, ignore_punctuation) == (
        normalise_for_exact_match(gold, regexes, ignore_case, ignore_punctuation)
    )
    return 1.0 if same else 0.0


def gold_answer(doc: Mapping[str, Any], variant: str | Gsm8kVariant) -> str:
    """lm-eval's doc_to_target: the whole solution, or (gsm8k_cot) the number after "####"."""
    if not get_variant(variant).target_is_final_number:
        return doc["answer"]
    if "answer" in doc:
        return doc["answer"].split("####")[-1].strip()
    return doc["target"]  # the task file's own exemplars carry `target` instead of `answer`


def score_gsm8k(
    doc: Mapping[str, Any], response: str, variant: str | Gsm8kVariant
) -> dict[str, float]:
    """lm-eval's two results for one response, each 0.0 or 1.0:
    {"exact_match,strict-match": ..., "exact_match,flexible-extract": ...}."""
    gold = gold_answer(doc, variant)
    answers = extract_answers(response, variant)
    return {
        STRICT_KEY: exact_match(answers[STRICT_FILTER], gold),
        FLEXIBLE_KEY: exact_match(answers[FLEXIBLE_FILTER], gold),
    }


def lm_eval_task_dir() -> str:
    """lm-eval's installed gsm8k task folder, located without importing lm_eval."""
    try:
        spec = importlib.util.find_spec("lm_eval")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, "tasks", "gsm8k")
        if os.path.isdir(path):
            return path
    raise UserError(
        "gsm8k_cot's 8 chain-of-thought exemplars are read from lm-eval's task file, and "
        "lm-eval is not installed: `pip install 'lm-eval==0.4.13'`."
    )


@lru_cache(maxsize=1)
def _load_cot_exemplars() -> tuple[tuple[str, str], ...]:
    import yaml

    path = os.path.join(lm_eval_task_dir(), "gsm8k-cot.yaml")
    try:
        with open(path, encoding="utf-8") as fh:
            samples = yaml.safe_load(fh)["fewshot_config"]["samples"]
        exemplars = tuple((s["question"], s["target"]) for s in samples)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise UserError(
            f"Could not read gsm8k_cot's exemplars from {path} ({exc!r}): "
            "reinstall `lm-eval==0.4.13`."
        ) from None
    if len(exemplars) != 8 or not all(isinstance(x, str) and x for pair in exemplars for x in pair):
        raise UserError(
            f"{path} does not hold the 8 expected exemplars: reinstall `lm-eval==0.4.13`."
        )
    return exemplars


def cot_fewshot_exemplars() -> list[dict[str, str]]:
    """gsm8k_cot's fixed exemplars, in order ({"question", "target"}; lm-eval's `first_n` sampler).

    lm-eval renders each as doc_to_text + " " + target + "\\n\\n", all before the question.
    """
    return [{"question": q, "target": t} for q, t in _load_cot_exemplars()]
