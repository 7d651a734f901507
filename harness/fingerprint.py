"""Content hashes that identify models, adapters and data, so cached answers are never stale."""

from __future__ import annotations

import hashlib
import json
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
