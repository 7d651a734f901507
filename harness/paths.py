"""Where evalboard keeps things between runs (overridable by environment variables)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def home_dir() -> Path:
    """Cache root: converted models, the response cache, weight hashes."""
    root = os.environ.get("EVALBOARD_HOME") or Path.home() / ".cache" / "evalboard"
    return Path(root)


def response_cache_path() -> Path:
    return Path(os.environ.get("EVALBOARD_CACHE") or home_dir() / "responses.sqlite")


def package_root(module: str) -> Path | None:
    """An installed package's folder, found without importing it (data packages' `__init__` is
    heavy); None when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])
