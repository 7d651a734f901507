"""`evalboard leaderboard update`: only missing or stale cells are evaluated (real tiny models),
a second run changes nothing (byte-identical page), one failing model doesn't stop the others and
the page says what failed, retrained weights are noticed, and a second job is locked out."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error
from evalboard.engine.nightly import load_config, make_plan, run_update, update_lock
from evalboard.errors import UserError
from evalboard.records.store import list_runs
from leaderboard_helpers import run_evalboard
from tiny_models import build_tiny_llama

CONFIG = """\
results: results
output: results/leaderboard/index.html
bootstrap_rounds: 50
defaults:
  batch_size: 8
  limit: 4
models:
  - spec: hf:{a}
    label: tiny-a
  - spec: hf:{b}
    label: tiny-b
  - spec: hf:{missing}
    label: broken
tasks:
  - arc_easy
  - name: hellaswag
    limit: 3
"""


@pytest.fixture
def workdir(tiny_model: Path, tmp_path: Path) -> Path:
    model_b = build_tiny_llama(tmp_path / "tiny-b", seed=9)
    (tmp_path / "leaderboard.yaml").write_text(CONFIG.format(a=tiny_model, b=model_b, missing=tmp_path / "gone"))
    return tmp_path


def _update(workdir: Path, dry_run: bool = False):
    log = io.StringIO()
    result = run_update(load_config(workdir / "leaderboard.yaml"), dry_run=dry_run, log=log)
    return result, log.getvalue()


def test_update_evaluates_what_is_missing_then_nothing(workdir: Path) -> None:
    result, log = _update(workdir, dry_run=True)
    assert result.evaluated == [] and not (workdir / "results").exists()
    assert log.count("missing: no run yet") == 6 and "6 to evaluate" in log

    result, log = _update(workdir)
    assert sorted(result.evaluated) == [("tiny-a", "arc_easy"), ("tiny-a", "hellaswag"),
                                        ("tiny-b", "arc_easy"), ("tiny-b", "hellaswag")]
    assert {f["model"] for f in result.failures} == {"broken"}  # failed, and the others still ran
    assert all("does not exist" in f["error"] for f in result.failures)
    page = (workdir / "results" / "leaderboard" / "index.html").read_bytes()
    assert b"Failed in the last update" in page and b"does not exist" in page
    runs = list_runs(workdir / "results")
    hellaswag = [r.tasks["hellaswag"] for r in runs if "hellaswag" in r.tasks]
    assert {t.n_items for t in hellaswag} == {3}  # the per-task limit won over the default

    again, log = _update(workdir)
    assert again.evaluated == [] and "0 to evaluate" not in log  # broken is retried every time ...
    assert "4 up to date" in log
    assert len(list_runs(workdir / "results")) == len(runs)  # ... but nothing else ran
    assert (workdir / "results" / "leaderboard" / "index.html").read_bytes() == page  # byte-identical page


def test_stale_cells_are_evaluated_again(workdir: Path) -> None:
    _update(workdir)
    config_path = workdir / "leaderboard.yaml"
    config_path.write_text(config_path.read_text().replace("    limit: 3", "    limit: 5"))
    plan = make_plan(load_config(config_path))
    stale = {(c.model.label, c.task.name): c.reason for c in plan.cells if c.action == "evaluate"}
    assert stale.keys() == {("tiny-a", "hellaswag"), ("tiny-b", "hellaswag"), ("broken", "arc_easy"),
                            ("broken", "hellaswag")}
    assert stale[("tiny-a", "hellaswag")].startswith("stale: other items")

    build_tiny_llama(workdir / "tiny-b", seed=10)  # tiny-b retrained in place
    plan = make_plan(load_config(config_path))
    check = next(c for c in plan.checks if c.model.label == "tiny-b")
    assert check.needed and "changed after" in check.reason
    result, _ = _update(workdir)
    assert sorted(result.evaluated) == [("tiny-a", "hellaswag"), ("tiny-b", "arc_easy"), ("tiny-b", "hellaswag")]
    plan = make_plan(load_config(config_path))  # verified once: not loaded again for the same files
    assert not any(c.needed for c in plan.checks)
    assert [c.model.label for c in plan.cells if c.action == "evaluate"] == ["broken", "broken"]


def test_a_second_update_is_locked_out(workdir: Path) -> None:
    (workdir / "results").mkdir()
    with update_lock(workdir / "results"):
        result = run_evalboard("leaderboard", "update", "--config", str(workdir / "leaderboard.yaml"))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "already running" in lines[0] and "Traceback" not in result.stderr
    assert list_runs(workdir / "results") == []


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.yaml"
    path.write_text("models: [hf:x]\ntasks: [{name: arc_easy, limmit: 3}]\n")
    with pytest.raises(UserError, match="unknown key.*limmit"):
        load_config(path)
    path.write_text("models: [hf:x, {spec: 'hf:y', label: 'hf:x'}]\ntasks: [arc_easy]\n")
    with pytest.raises(UserError, match="appear twice"):
        load_config(path)
    result = run_evalboard("leaderboard", "update", "--config", str(tmp_path / "nope.yaml"), "--dry-run")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_an_unknown_model_scheme_is_a_config_error_not_a_plan(tmp_path: Path) -> None:
    """A dry run used to plan `hff:x` as "evaluate"; the real run would only fail on it later."""
    path = tmp_path / "leaderboard.yaml"
    path.write_text("models: [hf:x, {spec: 'hff:gpt2', label: typo}]\ntasks: [arc_easy]\n")
    result = run_evalboard("leaderboard", "update", "--config", str(path), "--dry-run")
    assert_one_line_error(result, "models[1] (hff:gpt2): unknown model scheme 'hff'", "use one of:", "hf,")
    assert "evaluate" not in result.stdout


def test_dry_run_on_the_cli_prints_the_plan(workdir: Path) -> None:
    shutil.rmtree(workdir / "results", ignore_errors=True)
    result = run_evalboard("leaderboard", "update", "--config", str(workdir / "leaderboard.yaml"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "tiny-a" in result.stdout and "6 to evaluate" in result.stdout
    assert not (workdir / "results" / "leaderboard").exists()
