"""Shared pieces of the leaderboard tests: real runs of tiny models, and the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import evalboard
from evalboard.records.run_record import RunRecord

# Names and outputs that would run script or break markup if anything were not escaped.
HOSTILE_LABEL = '<script>window.__pwned=1;alert("x")</script></script><img src=x onerror="window.__pwned=2">'
HOSTILE_ANSWER = "</script><script>window.__pwned=3</script><b>bold?</b> & \u2028 <!--"

# The same main() the `evalboard` console script runs. It also works before cli.py lists the
# leaderboard's command modules (they are appended here when missing).
_CLI = (
    "import sys, evalboard.cli as c\n"
    "c.COMMAND_MODULES = (*c.COMMAND_MODULES, *(m for m in ('leaderboard', 'import_runs') if m not in c.COMMAND_MODULES))\n"
    "sys.exit(c.main(sys.argv[1:]))\n"
)


def run_evalboard(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                  timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CLI, *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def evaluate_tiny(model: Path, tasks: list[str], results: Path, limit: int, **kwargs) -> RunRecord:
    """A real evalboard run of a tiny model, saved into `results` (own response cache)."""
    return evalboard.evaluate(f"hf:{model}", tasks, limit=limit, output_dir=results, batch_size=8,
                              cache=results.parent / "responses.sqlite", **kwargs)
