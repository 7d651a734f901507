"""GSM8K's hooks: rows -> documents, and gsm8k_cot's fixed exemplars.

Scoring needs no Python: the task files declare lm-eval's filter pipelines (strict-match,
flexible-extract) and its exact_match options. gsm8k_cot's 8 chain-of-thought exemplars are read
from lm-eval's own task file (`lm_eval/tasks/gsm8k/gsm8k-cot.yaml`), located without importing
lm_eval, so they are the reference's exactly.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Any

import yaml
from evalboard.errors import UserError


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    # Ids are positions in the test split: the same in OLMo's copy and on the Hub.
    return [{"id": str(i), "question": row["question"], "answer": row["answer"]} for i, row in enumerate(rows)]


def lm_eval_task_dir() -> str:
    """lm-eval's installed gsm8k task folder."""
    try:
        spec = importlib.util.find_spec("lm_eval")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, "tasks", "gsm8k")
        if os.path.isdir(path):
            return path
    raise UserError("gsm8k_cot's 8 chain-of-thought exemplars are read from lm-eval's task file, and "
                    "lm-eval is not installed: `pip install 'lm-eval==0.4.13'`")


@lru_cache(maxsize=1)
def _cot_exemplars() -> tuple[tuple[str, str], ...]:
    path = os.path.join(lm_eval_task_dir(), "gsm8k-cot.yaml")
    try:
        with open(path, encoding="utf-8") as handle:
            samples = yaml.safe_load(handle)["fewshot_config"]["samples"]
        exemplars = tuple((s["question"], s["target"]) for s in samples)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise UserError(f"could not read gsm8k_cot's exemplars from {path} ({exc!r}); "
                        f"reinstall `lm-eval==0.4.13`") from None
    if len(exemplars) != 8 or not all(isinstance(x, str) and x for pair in exemplars for x in pair):
        raise UserError(f"{path} does not hold the 8 expected exemplars; reinstall `lm-eval==0.4.13`")
    return exemplars


def fewshot_examples() -> list[dict[str, Any]]:
    """gsm8k_cot's 8 fixed exemplars, in order (lm-eval's `first_n` sampler over its samples)."""
    return [{"id": f"cot-exemplar-{i}", "question": q, "target": t} for i, (q, t) in enumerate(_cot_exemplars())]
