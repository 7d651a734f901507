"""The response cache: a rerun asks nothing again, and a run killed with SIGKILL resumes
without repeating any answered request and ends with identical results."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import evalboard

TASKS = "arc_easy,hellaswag"
LIMIT = 30


def _scores(record) -> dict:
    return {task: [(s.doc_id, s.scores, [r.logprob for r in s.responses])
                   for s in record.samples[task]] for task in record.tasks}


def _cached_rows(path: Path) -> int:
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_rerun_is_served_entirely_from_the_cache(tiny_model: Path, tmp_path: Path) -> None:
    first = evalboard.evaluate(f"hf:{tiny_model}", TASKS, limit=10, output_dir=None)
    second = evalboard.evaluate(f"hf:{tiny_model}", TASKS, limit=10, output_dir=None)
    assert first.usage.requests_answered_now == first.usage.unique_requests > 0
    assert second.usage.requests_answered_now == 0
    assert _scores(first) == _scores(second)


def test_killed_run_resumes_without_repeating_answered_requests(tiny_model: Path, tmp_path: Path) -> None:
    cache = tmp_path / "killed.sqlite"
    script = (
        "import evalboard; evalboard.evaluate("
        f"'hf:{tiny_model}', '{TASKS}', limit={LIMIT}, batch_size=1, output_dir=None, cache={str(cache)!r})"
    )
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "EVALBOARD_CACHE": str(cache)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _cached_rows(cache) < 20 and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    answered_before = _cached_rows(cache)
    assert answered_before >= 20

    resumed = evalboard.evaluate(f"hf:{tiny_model}", TASKS, limit=LIMIT, batch_size=1, output_dir=None, cache=cache)
    usage = resumed.usage
    assert usage.cache_hits == answered_before
    assert usage.requests_answered_now == (usage.unique_requests or 0) - answered_before
    uninterrupted = evalboard.evaluate(f"hf:{tiny_model}", TASKS, limit=LIMIT, batch_size=1, output_dir=None,
                                       cache=tmp_path / "fresh.sqlite")
    assert _scores(resumed) == _scores(uninterrupted)


def test_a_different_model_never_gets_another_models_answers(tiny_model: Path, tiny_model_no_bos: Path) -> None:
    evalboard.evaluate(f"hf:{tiny_model}", "arc_easy", limit=5, output_dir=None)
    other = evalboard.evaluate(f"hf:{tiny_model_no_bos}", "arc_easy", limit=5, output_dir=None)
    assert other.usage.cache_hits == 0
