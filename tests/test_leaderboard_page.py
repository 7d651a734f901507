"""The built page and its exports: deterministic bytes, everything from results escaped, exports
that match the tables, new tasks and metrics with no code change, and the `build` command."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import markupsafe
import pytest
import synthetic_runs as synthetic
from evalboard.leaderboard.build import build_leaderboard
from evalboard.records.run_record import SampleLine
from leaderboard_helpers import HOSTILE_ANSWER, HOSTILE_LABEL, evaluate_tiny, run_evalboard

EXPORTS = ["scores.csv", "scores.json", "ratings.csv", "ratings.json"]


@pytest.fixture(scope="module")
def store(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run, synthetic open and closed models, and a model with a hostile name and outputs."""
    results = tmp_path_factory.mktemp("lb-page") / "results"
    evaluate_tiny(tiny_model, ["arc_easy"], results, limit=8, label="tiny-real")
    zoo = synthetic.model_zoo(10, seed=1)
    synthetic.write_store(results, zoo, {"syn_mc": 8, "gsm8k": 12})
    hostile = synthetic.SyntheticModel(HOSTILE_LABEL, 0.3, open_weights=False, cost_per_item_usd=0.001)

    def plant(task: str, line: SampleLine) -> None:
        if task == "gsm8k":
            line.responses[0].text = HOSTILE_ANSWER
            line.prompt = HOSTILE_ANSWER + str(line.prompt)

    synthetic.write_run(results, hostile, {"syn_mc": 8, "gsm8k": 12}, "2025-06-01T00:00:00+00:00", edit=plant)
    return results


def _build(store: Path, out: Path, **kwargs) -> Path:
    build_leaderboard(store, out / "index.html", rounds=100, cache=False, **kwargs)
    return out


def test_same_results_give_byte_identical_outputs(store: Path, tmp_path: Path) -> None:
    first = _build(store, tmp_path / "one")
    copy = tmp_path / "copy"
    for path in sorted(store.iterdir(), reverse=True):  # other inode order, other mtimes, other place
        shutil.copytree(path, copy / path.name)
    second = _build(copy, tmp_path / "two")
    for name in ["index.html", *EXPORTS]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    page = (first / "index.html").read_text()
    assert "tiny-real" in page and "api-model-007" in page


def _embedded_json(page: str) -> str:
    match = re.search(r'<script type="application/json" id="board-data">(.*?)</script>', page, re.S)
    assert match
    return match.group(1)


def test_everything_from_results_is_text_not_markup(store: Path, tmp_path: Path) -> None:
    page = (_build(store, tmp_path) / "index.html").read_text()
    assert "window.__pwned" in page  # it is on the page ...
    assert "<script>window.__pwned" not in page and "<img src=x" not in page  # ... but never as markup
    assert "<b>bold?</b>" not in page
    assert str(markupsafe.escape(HOSTILE_LABEL)) in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script type="application/json" id="board-data">', "<script>"]
    embedded = _embedded_json(page)
    assert "</" not in embedded and "<!--" not in embedded and "\u2028" not in embedded
    data = json.loads(embedded)
    assert HOSTILE_LABEL in {m["model"] for m in data["models"]}


def test_exports_hold_the_tables(store: Path, tmp_path: Path) -> None:
    out = _build(store, tmp_path)
    scores = json.loads((out / "scores.json").read_text())
    assert [c["id"] for c in scores["columns"]] == ["arc_easy|loglikelihood|0-shot|acc_norm",
                                                    "gsm8k|generate|0-shot|exact_match",
                                                    "syn_mc|loglikelihood|0-shot|acc_norm"]
    by_model = {m["model"]: m for m in scores["models"]}
    assert len(by_model) == 12 and by_model["tiny-real"]["access"] == "open"
    assert by_model[HOSTILE_LABEL]["access"] == "closed"
    assert by_model[HOSTILE_LABEL]["cost_per_1k_items_usd"] == pytest.approx(1.0)
    real = by_model["tiny-real"]["cells"]["arc_easy|loglikelihood|0-shot|acc_norm"]
    assert real["n"] == 8 and real["status"] == "current"
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    row = next(r for r in rows if r["model"] == "tiny-real")
    assert float(row["arc_easy|loglikelihood|0-shot|acc_norm :: value"]) == pytest.approx(real["value"], abs=1e-5)
    ratings = json.loads((out / "ratings.json").read_text())
    assert ratings["bootstrap_rounds"] == 100
    overall = [r for r in ratings["ratings"] if r["task"] == "(overall)"]
    # tiny-real is alone in its column (no battles): it is in the table, not in the ratings
    assert len(overall) == 11 and "tiny-real" not in {r["model"] for r in overall}
    assert by_model["tiny-real"]["rating"] is None and by_model[HOSTILE_LABEL]["rating"] is not None
    with open(out / "ratings.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(ratings["ratings"])


def test_a_new_task_and_metric_need_no_leaderboard_change(tmp_path: Path) -> None:
    store = tmp_path / "results"
    for k, (name, errors) in enumerate([("good", [0, 1, 0, 0]), ("bad", [1, 1, 1, 0])]):
        synthetic.write_scored_run(store, name, "my_new_task", "brier_error", errors, f"2025-01-0{k + 1}T00:00:00+00:00",
                                   higher_is_better=False, formulation="generate", num_fewshot=3)
    out = _build(store, tmp_path / "site")
    page = (out / "index.html").read_text()
    assert "my_new_task" in page and "brier_error · generate · 3-shot" in page and "(lower is better)" in page
    ratings = json.loads((out / "ratings.json").read_text())["ratings"]
    best = next(r for r in ratings if r["task"] == "(overall)" and r["rank"] == 1)
    assert best["model"] == "good"


def test_a_group_task_drills_down_to_its_subtasks(tiny_model: Path, tmp_path: Path) -> None:
    """MMLU's subjects are listed under its result, from the record's subtask figures."""
    results = tmp_path / "results"
    record = evaluate_tiny(tiny_model, ["mmlu", "arc_easy"], results, limit=2, num_fewshot=0)
    subtasks = record.tasks["mmlu"].subtasks
    assert subtasks is not None and len(subtasks) == 57  # two items of each subject
    page = (_build(results, tmp_path / "site") / "index.html").read_text()
    (table,) = re.findall(r'<details class="subtasks">(.*?)</details>', page, re.S)  # arc_easy has none
    assert "<summary>57 subtasks</summary>" in table
    rows = dict(re.findall(r"<tr><td>([a-z_]+)</td>(.*?)</tr>", table, re.S))
    assert sorted(rows) == sorted(subtasks)
    for subject in ("abstract_algebra", "world_religions"):
        figure = subtasks[subject]["acc"]
        assert f"{figure.value:.4f} ± {figure.stderr:.4f}" in rows[subject]


def test_the_build_command(store: Path, tmp_path: Path) -> None:
    result = run_evalboard("leaderboard", "build", "--results", str(store), "--output",
                           str(tmp_path / "site" / "index.html"), "--rounds", "50", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "12 models, 3 task columns" in result.stdout
    assert all((tmp_path / "site" / name).is_file() for name in ["index.html", *EXPORTS])
    missing = run_evalboard("leaderboard", "build", "--results", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_score_cache_gives_the_same_page(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALBOARD_HOME", str(tmp_path / "home"))
    uncached = _build(store, tmp_path / "plain")
    build_leaderboard(store, tmp_path / "warm" / "index.html", rounds=100)  # fills the cache
    cached_files = list((tmp_path / "home" / "leaderboard-scores").glob("*.npz"))
    assert len(cached_files) == 23  # one per rated (run, task)
    build_leaderboard(store, tmp_path / "hot" / "index.html", rounds=100)  # reads from it
    for name in ["index.html", *EXPORTS]:
        assert (uncached / name).read_bytes() == (tmp_path / "hot" / name).read_bytes()
