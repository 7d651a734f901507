"""Hardening: inputs and environments that used to end in a traceback, several lines, or a
silently wrong result now end in one line on stderr and exit code 2 (or a warning and a correct
record), with nothing computed lost."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from cli_helpers import EVALBOARD, assert_one_line_error


def test_no_home_folder_is_one_line_naming_the_fix() -> None:
    """A container run as a uid with no passwd entry and no HOME: Path.home() raised RuntimeError."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become a uid that has no passwd entry")
    uid = 4243
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    work = Path(tempfile.mkdtemp(prefix="evalboard-nohome-", dir="/var/tmp"))
    try:
        work.chmod(0o777)
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", EVALBOARD, "run",
                   "--model", "chance:0", "--tasks", "arc_easy", "--limit", "1", "--output", str(work / "out")]
        env = {"PATH": os.environ["PATH"]}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=work)
        assert_one_line_error(result, "HOME is unset and uid 4243 has no passwd entry", "set EVALBOARD_HOME")
        assert not (work / "out").exists() or not any((work / "out").iterdir())
        done = subprocess.run(command, env={**env, "EVALBOARD_HOME": str(work / "home")}, capture_output=True,
                              text=True, timeout=300, cwd=work)
        assert done.returncode == 0, done.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
