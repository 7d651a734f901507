"""IFEval scoring, computed by lm-eval 0.4.13's own instruction checkers.

We deliberately call lm-eval (`lm_eval/tasks/ifeval/utils.py`: `process_results`, which runs
Google's checkers through `test_instruction_following_strict/loose`) instead of re-implementing
them: the numbers are then lm-eval's by construction. What this module adds: the offline NLTK
setup done before the checkers are imported; reproducibility (lm-eval leaves two sources of
randomness open, langdetect's sampling and a random fallback letter for two instructions, both
pinned here); a small API; a clear UserError when the checkers are missing. The items come through
the task file (tasks/ifeval.yaml), like every task's.

A doc is a dict with `key` (int), `prompt` (str), `instruction_id_list` (list[str]) and `kwargs`
(list of dicts, one per instruction). The Hub copy (`google/IFEval`) stores every kwargs dict with
every argument name (None where unused); the offline copy lists only the used ones. lm-eval drops
falsy values before building each checker, so both forms score the same; `normalise_ifeval_doc`
turns either into the compact form so that the items (and their fingerprint) are identical.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from types import ModuleType
from typing import Any

from evalboard.errors import UserError
from evalboard.taskdef.scorers.nltk_offline import ensure_punkt_tab

PROMPT_LEVEL_STRICT = "prompt_level_strict_acc"
INST_LEVEL_STRICT = "inst_level_strict_acc"
PROMPT_LEVEL_LOOSE = "prompt_level_loose_acc"
INST_LEVEL_LOOSE = "inst_level_loose_acc"
PROMPT_LEVEL_METRICS = (PROMPT_LEVEL_STRICT, PROMPT_LEVEL_LOOSE)
INST_LEVEL_METRICS = (INST_LEVEL_STRICT, INST_LEVEL_LOOSE)
IFEVAL_METRICS = (PROMPT_LEVEL_STRICT, INST_LEVEL_STRICT, PROMPT_LEVEL_LOOSE, INST_LEVEL_LOOSE)

# Two of the 834 instructions (keywords:letter_frequency with letter "#" or "!": items 1122, 1129)
# fall back to a random letter: the checkers draw from Python's global `random`, so lm-eval's own
# result for them depends on whatever ran before. We run each scoring from this fixed state instead.
CHECKER_RANDOM_SEED = 0
_RANDOM_LOCK = threading.RLock()
_INSTALL_HINT = (
    "install it with `pip install 'lm-eval==0.4.13'` (needs langdetect, immutabledict, nltk>=3.9.1)"
)


@contextmanager
def _fixed_global_random(seed: int) -> Iterator[None]:
    """Seed the global `random` for the checkers, then give the caller its own stream back."""
    with _RANDOM_LOCK:
        state = random.getstate()
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


@lru_cache(maxsize=1)
def _lm_eval_ifeval() -> ModuleType:
    """Import lm-eval's IFEval scoring module once, offline and deterministic."""
    try:
        # Importing nltk draws from the global `random`; keep the caller's stream as it was.
        with _fixed_global_random(CHECKER_RANDOM_SEED):
            # Must precede the import: instructions_util downloads punkt_tab if it is missing.
            ensure_punkt_tab()
            import langdetect
            from lm_eval.tasks.ifeval import utils
    except ImportError as exc:
        raise UserError(
            f"IFEval scoring needs lm-eval's instruction checkers, which failed to import ({exc}): "
            f"{_INSTALL_HINT}."
        ) from None
    # langdetect draws random numbers per call unless seeded, so a borderline text could flip
    # between runs; seed 0 makes every detection reproducible (lm-eval leaves it unseeded).
    langdetect.DetectorFactory.seed = 0
    return utils


def checker_version() -> str:
    """The package that defines the IFEval metrics here, for run records and fingerprints."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lm-eval=={version('lm_eval')}"
    except PackageNotFoundError:
        raise UserError(
            f"IFEval scoring needs lm-eval, which is not installed: {_INSTALL_HINT}."
        ) from None


def normalise_ifeval_doc(row: Mapping[str, Any]) -> dict[str, Any]:
    """The compact, canonical form of an IFEval item, from the offline jsonl or a Hub row."""
    instruction_ids = [str(i) for i in row["instruction_id_list"]]
    kwargs = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in row["kwargs"]]
    if len(kwargs) != len(instruction_ids):
        raise ValueError(
            f"IFEval item {row.get('key')}: {len(instruction_ids)} instructions "
            f"but {len(kwargs)} kwargs"
        )
    return {
        "key": int(row["key"]),
        "prompt": str(row["prompt"]),
        "instruction_id_list": instruction_ids,
        "kwargs": kwargs,
    }


def score_ifeval(doc: Mapping[str, Any], response: str) -> dict[str, Any]:
    """lm-eval's per-prompt IFEval result for one response.

    Returns {"prompt_level_strict_acc": bool, "inst_level_strict_acc": list[bool],
    "prompt_level_loose_acc": bool, "inst_level_loose_acc": list[bool]} (one bool per instruction,
    in `instruction_id_list` order). "Loose" accepts the response if any of lm-eval's variants of it
    (without its first and/or last line, without `*`) follows the instruction.
    """
    if not isinstance(response, str):
        raise TypeError(f"an IFEval response must be a str, got {type(response).__name__}")
    utils = _lm_eval_ifeval()
    unknown = [
        i
        for i in doc["instruction_id_list"]
        if i not in utils.instructions_registry.INSTRUCTION_DICT
    ]
    if unknown:
        raise UserError(
            f"IFEval item {doc.get('key')} names instructions {unknown} that lm-eval's checkers "
            f"({checker_version()}) do not know: check the data or the lm-eval version."
        )
    with _fixed_global_random(CHECKER_RANDOM_SEED):
        result = utils.process_results(dict(doc), [response])
    return {name: result[name] for name in IFEVAL_METRICS}


def aggregate_ifeval(per_sample: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Prompt-level metrics: mean over prompts. Instruction-level: mean over every instruction of
    every prompt (lm-eval's `agg_inst_level_acc`), so prompts with more instructions weigh more."""
    if not per_sample:
        raise ValueError("aggregate_ifeval needs at least one scored prompt")
    out: dict[str, float] = {}
    for name in PROMPT_LEVEL_METRICS:
        values = [s[name] for s in per_sample]
        out[name] = sum(values) / len(values)
    for name in INST_LEVEL_METRICS:
        flat = [v for s in per_sample for v in s[name]]
        out[name] = sum(flat) / len(flat)
    return {name: out[name] for name in IFEVAL_METRICS}
