"""The persistent response cache: (model fingerprint, request) -> response.

SQLite in WAL mode, one commit per stored answer, so a run killed with SIGKILL keeps every answer
that had arrived and a restart asks only for the rest. A retrained adapter at the same path has a
new content hash, hence a new fingerprint, hence no stale hits.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from evalboard.atomic import make_private_dirs
from evalboard.errors import UserError
from evalboard.requests import Request, Response, request_key

logger = logging.getLogger(__name__)


class ResponseCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.write_error: str | None = None  # why the cache stopped being written, if it did
        if path is not None:
            try:
                _create_private(path)
                self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS responses (model TEXT, request TEXT, response TEXT, "
                    "PRIMARY KEY (model, request))"
                )
                self._db.commit()
            except (OSError, sqlite3.Error) as exc:
                raise UserError(f"cannot open the response cache {path}: {exc}; set EVALBOARD_CACHE "
                                f"to a writable file or pass --no-cache") from exc

    def get_many(self, model: str, requests: Iterable[Request]) -> dict[str, Response]:
        if self._db is None:
            return {}
        keys = list(dict.fromkeys(request_key(r) for r in requests))
        found: dict[str, Response] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT request, response FROM responses WHERE model=? AND request IN ({marks})",
                    [model, *chunk],
                )
                for key, blob in rows:
                    found[key] = Response.from_json(json.loads(blob))
        return found

    def put(self, model: str, request: Request, response: Response) -> None:
        """Keep one answer. A cache that can no longer be written (a full disk) is said once and
        then skipped: the run goes on, and its answers reach the run record all the same."""
        if self._db is None or response.failed or self.write_error:  # failures are retried next run
            return
        blob = json.dumps(response.to_json())
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (model, request_key(request), blob)
                )
                self._db.commit()
            except sqlite3.Error as exc:
                full = "full" in str(exc).lower()
                self.write_error = "the disk is full" if full else str(exc)
                logger.warning("warning: the response cache %s can no longer be written (%s): the answers "
                               "from here on are kept in this run's record only, and a rerun asks for them "
                               "again; free space or set EVALBOARD_CACHE elsewhere", self.path, self.write_error)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _create_private(path: Path) -> None:
    """The cache holds every answer a model gave: its missing folders are created 0700 and the
    file 0600 whatever the umask, and an existing one that others could read loses those bits
    (SQLite gives its -wal and -shm files the database file's mode)."""
    make_private_dirs(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(file, mode & 0o700)
