"""Content hashes that identify models, adapters, data and code, so cached answers are never stale."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalboard.atomic import write_text_atomic
from evalboard.paths import home_dir

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def stable_hash(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hash_cached(path: Path) -> str:
    """sha256 of a (large) file, remembered by (path, size, mtime) so a 500 MB checkpoint is
    hashed once, and re-hashed whenever it is rewritten."""
    stat = path.stat()
    key = stable_hash([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    memo = home_dir() / "hashes" / key
    if memo.is_file():
        return memo.read_text().strip()
    value = _file_sha256(path)
    write_text_atomic(memo, value)
    return value


def directory_hash(directory: Path, only_weights: bool = False) -> str:
    """Hash of every file's relative name and content in a folder (weights only, if asked)."""
    entries = []
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        if only_weights and not path.name.endswith(WEIGHT_SUFFIXES):
            continue
        entries.append([str(path.relative_to(directory)), file_hash_cached(path)])
    return stable_hash(entries)


# --- code -------------------------------------------------------------------------------------

_PACKAGE = "evalboard"


def _is_ours(name: str) -> bool:
    return name == _PACKAGE or name.startswith(_PACKAGE + ".")


def _spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)  # imports the parent packages only (ours are light)
    except (ImportError, ValueError):
        return None


def _submodule(package: Any, name: str, leaf: str) -> str | None:
    """`package.leaf` when it is a module, found on disk so that a function's name never imports
    anything."""
    for location in package.submodule_search_locations or ():
        if (Path(location) / f"{leaf}.py").is_file() or (Path(location) / leaf / "__init__.py").is_file():
            return f"{name}.{leaf}"
    return None


@dataclass(frozen=True)
class ModuleCode:
    """One module's source digest and the evalboard modules it imports (anywhere in it)."""

    digest: str
    imports: tuple[str, ...]

    @classmethod
    def parse(cls, source: str, package: str | None = None) -> ModuleCode:
        """`package` resolves relative imports (None: a file outside any package)."""
        found: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if _is_ours(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    if not package:
                        continue
                    base = importlib.util.resolve_name("." * node.level + base, package)
                spec = _spec(base) if _is_ours(base) else None
                if spec is None:
                    continue
                found.add(base)
                found.update(filter(None, (_submodule(spec, base, alias.name) for alias in node.names)))
        return cls(hashlib.sha256(source.encode("utf-8")).hexdigest(), tuple(sorted(found)))


@functools.cache
def module_code(name: str) -> ModuleCode:
    """Parsed once per process: an imported module's code does not change under it."""
    spec = _spec(name)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return ModuleCode(stable_hash(None), ())
    package = name if spec.submodule_search_locations else name.rpartition(".")[0]
    return ModuleCode.parse(Path(origin).read_text(encoding="utf-8"), package)


def code_hash(modules: Iterable[str], files: Iterable[Path] = (), hashed_as_data: Iterable[str] = ()) -> str:
    """Hash of the source of `modules` and `files` and of every evalboard module they import,
    directly or not: a fix to any of them changes it, an edit anywhere else does not. Modules in
    `hashed_as_data` are left out, with what only they import, when their effect is hashed
    elsewhere (the parsed task file, the loaded items)."""
    digests: dict[str, str] = {}
    pending = list(modules)
    for path in files:  # named by file name, not place: the same task elsewhere hashes the same
        code = ModuleCode.parse(Path(path).read_text(encoding="utf-8"))
        digests[f"file:{Path(path).name}"] = code.digest
        pending.extend(code.imports)
    skip = set(hashed_as_data)
    while pending:
        name = pending.pop()
        if name in digests or name in skip:
            continue
        code = module_code(name)
        digests[name] = code.digest
        pending.extend(code.imports)
    return stable_hash(digests)
