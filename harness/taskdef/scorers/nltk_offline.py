"""Make NLTK's `punkt_tab` sentence model findable with no network.

lm-eval's IFEval checkers (`lm_eval/tasks/ifeval/instructions_util.py`) look for
`tokenizers/punkt_tab` when they are imported and call `nltk.download` if it is missing. Our
machines (and many users' CI) have no internet, so the lookup must succeed *before* that import.
`llama-index-core` ships a copy of punkt_tab in `llama_index/core/_static/nltk_cache`; we locate it
with `find_spec` (importing llama_index would pull in far more than we need) and append it to
`nltk.data.path`, so a punkt_tab the user already has (NLTK_DATA, ~/nltk_data, ...) still wins.
"""

from __future__ import annotations

import importlib.util
import os

from evalboard.errors import UserError

PUNKT_TAB_RESOURCE = "tokenizers/punkt_tab"
_LLAMA_INDEX_CACHE = os.path.join("core", "_static", "nltk_cache")


def packaged_nltk_cache() -> str | None:
    """The nltk_cache folder inside the installed llama-index-core, or None if there is none."""
    try:
        spec = importlib.util.find_spec("llama_index")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = os.path.join(root, _LLAMA_INDEX_CACHE)
        if os.path.isdir(os.path.join(candidate, "tokenizers", "punkt_tab")):
            return candidate
    return None


def ensure_punkt_tab() -> str:
    """Make `nltk.data.find("tokenizers/punkt_tab")` succeed without downloading anything.

    Returns the path NLTK resolved the resource to. Raises UserError when no copy can be found.
    """
    try:
        import nltk
    except ImportError:
        raise UserError(
            "IFEval scoring needs NLTK: install it with `pip install 'nltk>=3.9.1'`."
        ) from None

    try:
        return str(nltk.data.find(PUNKT_TAB_RESOURCE))
    except LookupError:
        pass
    cache = packaged_nltk_cache()
    if cache is not None and cache not in nltk.data.path:
        nltk.data.path.append(cache)
    try:
        return str(nltk.data.find(PUNKT_TAB_RESOURCE))
    except LookupError:
        raise UserError(
            "NLTK's 'punkt_tab' data (needed by the IFEval checkers) was not found and will not "
            "be downloaded: install it offline with "
            "`pip install --no-deps llama-index-core==0.14.25`, or run "
            "`python -m nltk.downloader punkt_tab` on a machine with internet access and point "
            "NLTK_DATA at it."
        ) from None
