"""Where evalboard keeps things between runs (overridable by environment variables)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from evalboard.errors import UserError


class NoHomeError(UserError, RuntimeError):
    """No folder to keep state in (a RuntimeError too, as Path.home()'s own failure is)."""


def home_dir() -> Path:
    """Cache root: converted models, the response cache, weight hashes."""
    if os.environ.get("EVALBOARD_HOME"):
        return Path(os.environ["EVALBOARD_HOME"])
    try:
        return Path.home() / ".cache" / "evalboard"
    except RuntimeError:  # no HOME and no passwd entry (a container started with `-u 4243`)
        raise NoHomeError(
            f"evalboard has no folder for its cache: HOME is unset and uid {os.getuid()} has no passwd "
            f"entry; set EVALBOARD_HOME (or HOME) to a writable folder"
        ) from None


def response_cache_path() -> Path:
    return Path(os.environ.get("EVALBOARD_CACHE") or home_dir() / "responses.sqlite")


def package_root(module: str) -> Path | None:
    """An installed package's folder, found without importing it (data packages' `__init__` is
    heavy); None when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])
