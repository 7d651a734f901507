"""The leaderboard's aggregation: cells and their status, the score table, and the per-item
score frames that feed the ratings. Real runs of tiny models, plus synthetic runs where a
situation is hard to produce for real (other task fingerprints, odd metrics)."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import synthetic_runs as synthetic
from evalboard.leaderboard.battles import board_ratings, item_score_frame, read_item_scores
from evalboard.leaderboard.ratings import OVERALL
from evalboard.leaderboard.runs import CURRENT, DIFFERS, STALE, SUPERSEDED, load_cells, model_infos
from evalboard.leaderboard.table import score_table
from evalboard.records.store import list_runs
from leaderboard_helpers import evaluate_tiny
from tiny_models import build_tiny_llama

TASKS = ["arc_easy", "hellaswag"]


@pytest.fixture(scope="module")
def real_store(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny models, each evaluated on ARC-Easy and HellaSwag (6 items)."""
    root = tmp_path_factory.mktemp("lb-real")
    other = build_tiny_llama(root / "tiny-b", seed=5)
    results = root / "results"
    evaluate_tiny(tiny_model, TASKS, results, limit=6, label="tiny-a")
    evaluate_tiny(other, TASKS, results, limit=6, label="tiny-b")
    return results


def _copy(store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "results"
    shutil.copytree(store, target)
    return target


def test_table_cells_are_the_runs_primary_metrics(real_store: Path) -> None:
    runs = list_runs(real_store)
    cells = load_cells(runs)
    models = model_infos(cells, runs)
    table = score_table(cells, models).set_index("model")
    assert sorted(table.index) == ["tiny-a", "tiny-b"]
    for record in runs:
        label = record.model.label
        assert models[label].open_weights is True and models[label].parameters > 0
        for task, entry in record.tasks.items():
            primary = entry.metrics[entry.primary_metric]
            column = f"{task}|loglikelihood|0-shot|{entry.primary_metric}"
            assert table.loc[label, f"{column} :: value"] == primary.value
            assert table.loc[label, f"{column} :: n"] == primary.n == 6
            half = table.loc[label, f"{column} :: ci_high"] - primary.value
            assert half == pytest.approx(1.959964 * primary.stderr, rel=1e-5)
            assert table.loc[label, f"{column} :: status"] == CURRENT
        values = [record.metric(task) for task in record.tasks]
        assert table.loc[label, "average"] == pytest.approx(np.mean(values))
        assert table.loc[label, "columns_averaged"] == 2


def test_item_scores_are_the_samples_primary_scores(real_store: Path) -> None:
    runs = list_runs(real_store)
    frame = item_score_frame(load_cells(runs), cache=False)
    assert set(frame["task"]) == {f"{t}|loglikelihood|0-shot|acc_norm" for t in TASKS}
    for record in runs:
        label = record.model.label
        for task in TASKS:
            expected = sorted(s.scores["acc_norm"] for s in record.load_samples(task))
            rows = frame[(frame["model"] == label) & (frame["task"].astype(str).str.startswith(task + "|"))]
            assert sorted(rows["score"]) == expected and len(rows) == 6
    # Both models answered the same 6 items of each task: item keys pair up.
    counts = frame.groupby(["task", "item_key"], observed=True).size()
    assert (counts == 2).all() and len(counts) == 12


def test_newest_run_wins_and_changed_weights_make_cells_stale(real_store: Path, tiny_model: Path,
                                                              tmp_path: Path) -> None:
    results = _copy(real_store, tmp_path)
    evaluate_tiny(tiny_model, ["arc_easy"], results, limit=8, label="tiny-a")  # same model, more items
    model_c = build_tiny_llama(tmp_path / "tiny-c", seed=7)
    evaluate_tiny(model_c, TASKS, results, limit=6, label="tiny-c")
    build_tiny_llama(model_c, seed=8)  # retrained in place: same path and label, new weights
    evaluate_tiny(model_c, ["arc_easy"], results, limit=6, label="tiny-c")

    runs = list_runs(results)
    cells = load_cells(runs)
    arc = cells[cells["task"] == "arc_easy"]
    a = arc[arc["model"] == "tiny-a"].sort_values("created_at")
    assert list(a["status"]) == [SUPERSEDED, CURRENT] and list(a["n"]) == [6, 8]
    c = cells[cells["model"] == "tiny-c"].sort_values(["task", "created_at"])
    assert list(zip(c["task"], c["status"])) == [("arc_easy", STALE), ("arc_easy", CURRENT), ("hellaswag", STALE)]
    assert "model" in c[c["task"] == "hellaswag"]["reason"].iloc[0]

    table = score_table(cells, model_infos(cells, runs)).set_index("model")
    hs = "hellaswag|loglikelihood|0-shot|acc_norm"
    assert table.loc["tiny-c", f"{hs} :: status"] == STALE  # shown as stale ...
    assert table.loc["tiny-c", "columns_averaged"] == 1  # ... but not averaged
    frame = item_score_frame(cells, cache=False)
    assert not ((frame["model"] == "tiny-c") & (frame["task"] == hs)).any()  # ... nor rated
    assert ((frame["model"] == "tiny-c") & (frame["task"] != hs)).sum() == 6


def test_formulation_is_part_of_the_column(real_store: Path, tiny_model: Path, tmp_path: Path) -> None:
    results = _copy(real_store, tmp_path)
    evaluate_tiny(tiny_model, ["arc_easy"], results, limit=3, label="tiny-a", formulation="generative")
    cells = load_cells(list_runs(results))
    columns = {c.id for c in cells[cells["task"] == "arc_easy"]["column"]}
    assert columns == {"arc_easy|loglikelihood|0-shot|acc_norm", "arc_easy|generative|0-shot|acc"}
    mine = cells[(cells["model"] == "tiny-a") & (cells["task"] == "arc_easy")]
    assert set(mine["status"]) == {CURRENT}  # two measurements, two columns, neither replaces the other
    frame = item_score_frame(cells, cache=False)
    generative = frame[frame["task"] == "arc_easy|generative|0-shot|acc"]
    assert generative.empty  # only one model answered that way: no battles there


def _synthetic_store(root: Path) -> Path:
    """Four models on two tasks; model-d measured under another task fingerprint on task-x, and
    model-a with two runs (the newer one after a weights change)."""
    models = {name: synthetic.SyntheticModel(name, skill) for name, skill in
              [("model-a", 0.8), ("model-b", 0.2), ("model-c", -0.3), ("model-d", 0.0)]}
    tasks = {"task-x": 40, "task-y": 30}
    for k, name in enumerate(["model-a", "model-b", "model-c"]):
        synthetic.write_run(root, models[name], tasks, f"2025-02-01T00:00:0{k}+00:00", seed=k)
    synthetic.write_run(root, models["model-d"], {"task-x": 40}, "2025-02-01T00:00:05+00:00", task_version="2")
    synthetic.write_run(root, models["model-d"], {"task-y": 30}, "2025-02-01T00:00:06+00:00")
    newer = synthetic.SyntheticModel("model-a", 0.9, weights_version="v2")
    synthetic.write_run(root, newer, {"task-y": 30}, "2025-02-02T00:00:00+00:00")
    return root


def test_other_task_fingerprint_is_marked_and_kept_out(tmp_path: Path) -> None:
    cells = load_cells(list_runs(_synthetic_store(tmp_path)))
    d = cells[(cells["model"] == "model-d") & (cells["task"] == "task-x")]
    assert list(d["status"]) == [DIFFERS]
    a = cells[cells["model"] == "model-a"].sort_values(["task", "created_at"])
    assert list(zip(a["task"], a["status"])) == [("task-x", STALE), ("task-y", STALE), ("task-y", CURRENT)]
    frame = item_score_frame(cells, cache=False)
    x = frame[frame["task"].astype(str).str.startswith("task-x")]
    assert sorted(x["model"].astype(str).unique()) == ["model-b", "model-c"]


def _canonical(cells: pd.DataFrame) -> pd.DataFrame:
    out = cells.assign(column=cells["column"].map(lambda c: c.id))
    return out.sort_values(["run_id", "task"]).reset_index(drop=True)


def test_everything_is_independent_of_the_order_runs_are_read(tmp_path: Path, real_store: Path) -> None:
    store = _synthetic_store(tmp_path / "store")
    for path in real_store.iterdir():
        shutil.copytree(path, store / path.name)
    runs = list_runs(store)
    reference_cells = load_cells(runs)
    reference = board_ratings(item_score_frame(reference_cells, cache=False), rounds=200, seed=3)
    assert set(reference["task"]) >= {OVERALL} and len(reference) > 10
    shuffler = random.Random(0)
    for _ in range(3):
        shuffled = runs[:]
        shuffler.shuffle(shuffled)
        cells = load_cells(shuffled)
        pd.testing.assert_frame_equal(_canonical(cells), _canonical(reference_cells))
        frame = item_score_frame(cells.sample(frac=1.0, random_state=shuffler.randrange(1000)), cache=False)
        pd.testing.assert_frame_equal(board_ratings(frame, rounds=200, seed=3), reference)


def _write_samples(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_sample_readers_agree_on_every_kind_of_score(tmp_path: Path) -> None:
    plain = _write_samples(tmp_path / "plain.jsonl", [
        {"doc_id": "q1", "scores": {"acc": 1.0}, "prompt": "<x>"},
        {"doc_id": "q2", "scores": {}, "error": "timeout"},  # failed item
        {"doc_id": "q3", "scores": {"acc": 0.0, "other": [1, 2]}},
        {"doc_id": "q4", "scores": None},
    ])
    ids, scores = read_item_scores(plain, "acc", cache=False)
    assert list(ids) == ["q1", "q2", "q3", "q4"]
    assert scores[0] == 1.0 and math.isnan(scores[1]) and scores[2] == 0.0 and math.isnan(scores[3])
    numbered = _write_samples(tmp_path / "numbered.jsonl", [{"doc_id": 7, "scores": {"acc": True}},
                                                            {"doc_id": 8, "scores": {"acc": False}}])
    ids, scores = read_item_scores(numbered, "acc", cache=False)
    assert list(ids) == ["7", "8"] and list(scores) == [1.0, 0.0]
    per_instruction = _write_samples(tmp_path / "ifeval.jsonl", [
        {"doc_id": 1, "scores": {"inst_level_strict_acc": [True, False, True, True]}},
        {"doc_id": 2, "scores": {"inst_level_strict_acc": [False]}},
    ])
    ids, scores = read_item_scores(per_instruction, "inst_level_strict_acc", cache=False)
    assert list(ids) == ["1", "2"] and list(scores) == [0.75, 0.0]
    ids, scores = read_item_scores(plain, "acc_macro", cache=False)  # a group macro: items score `acc`
    assert scores[0] == 1.0


def test_lower_is_better_scores_are_negated_for_battles(tmp_path: Path) -> None:
    for k, (name, losses) in enumerate([("low-loss", [0.1, 0.2, 0.3]), ("high-loss", [0.5, 0.6, 0.7])]):
        synthetic.write_scored_run(tmp_path, name, "ppl", "loss", losses, f"2025-01-0{k + 1}T00:00:00+00:00",
                                   higher_is_better=False, formulation="loglikelihood_rolling")
    frame = item_score_frame(load_cells(list_runs(tmp_path)), cache=False)
    assert (frame[frame["model"] == "low-loss"]["score"] < 0).all()
    ratings = board_ratings(frame, rounds=50, seed=0)
    overall = ratings[ratings["task"] == OVERALL].set_index("model")
    assert overall.loc["low-loss", "rating"] > overall.loc["high-loss", "rating"]


def test_models_that_never_met_are_put_in_separate_groups(tmp_path: Path) -> None:
    for k, (name, task) in enumerate([("m1", "only-x"), ("m2", "only-x"), ("m3", "only-y"), ("m4", "only-y"),
                                      ("m5", "only-y")]):
        synthetic.write_run(tmp_path, synthetic.SyntheticModel(name, k * 0.1), {task: 20},
                            f"2025-03-01T00:00:0{k}+00:00")
    ratings = board_ratings(item_score_frame(load_cells(list_runs(tmp_path)), cache=False), rounds=50)
    overall = ratings[ratings["task"] == OVERALL].set_index("model")["group"].to_dict()
    assert overall == {"m3": 1, "m4": 1, "m5": 1, "m1": 2, "m2": 2}
