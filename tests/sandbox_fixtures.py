"""Shared by tests/test_sandbox.py and tests/test_code_execution.py: make sure bubblewrap is there
(installing it with the project's own script if not), and fail loudly if the sandbox cannot run.
The sandbox tests never skip: CI installs bubblewrap, and a missing sandbox is a real failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_sandbox.sh"


@pytest.fixture(scope="session")
def sandbox() -> None:
    if shutil.which("bwrap") is None:
        done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"bubblewrap is missing and {INSTALL_SCRIPT.name} failed:\n{done.stderr[-2000:]}")
    from evalboard.execution.sandbox import _check

    problem = _check()
    if isinstance(problem, str):
        pytest.fail(f"the code sandbox does not work on this machine: {problem}")


def host_processes_with(token: str) -> list[str]:
    """Host processes whose command line contains `token` (the sandbox's pid namespace is visible
    from outside, so anything that escaped the kill would show up here)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if token.encode() in cmdline:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
            found.append(f"{entry}: {shown}")
    return found
