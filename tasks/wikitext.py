"""WikiText's hooks: lm-eval's own preprocessing (lm_eval/tasks/wikitext/preprocess_wikitext.py,
loaded from the installed lm-eval by path, not copied): the detokeniser gives the scored text,
and its process_results counts words and bytes on the raw page."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from evalboard.errors import UserError


@lru_cache(maxsize=1)
def _reference() -> ModuleType:
    spec = importlib.util.find_spec("lm_eval")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "tasks" / "wikitext" / "preprocess_wikitext.py"
        if path.is_file():
            module_spec = importlib.util.spec_from_file_location("_evalboard_lm_eval_wikitext", path)
            assert module_spec and module_spec.loader
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            return module
    raise UserError("wikitext's preprocessing is lm-eval's own, and lm-eval is not installed: "
                    "`pip install 'lm-eval==0.4.13'`")


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    detokenize = _reference().wikitext_detokenizer
    return [{"id": str(i), "page": row["page"], "text": detokenize(row)} for i, row in enumerate(rows)]


def process_results(doc: dict[str, Any], loglikelihood: float) -> dict[str, Any]:
    return dict(_reference().process_results(doc, [loglikelihood]))
