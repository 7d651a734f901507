"""`evalboard import lm-eval`: real lm-eval output (its own CLI, hf backend, two tiny models, a
handful of local ARC-Easy items, --output_path and --log_samples) becomes runs in the store,
marked as imported, with the same numbers; the per-sample logs give battles and ratings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from evalboard.leaderboard.build import build_leaderboard
from evalboard.records.run_record import load_run
from evalboard.records.store import list_runs
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks
from leaderboard_helpers import run_evalboard
from lm_eval_reference import write_arc
from tiny_models import build_tiny_llama


@pytest.fixture(scope="module")
def lm_eval_output(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lm-eval's own CLI entry point, run in this process for two models (imports once)."""
    from lm_eval.__main__ import cli_evaluate

    root = tmp_path_factory.mktemp("lm-eval")
    other = build_tiny_llama(root / "tiny-other", seed=4)
    tasks = root / "tasks"
    tasks.mkdir()
    docs = prepare_task(discover_tasks()["arc_easy"], TaskOptions(limit=5)).docs
    name = write_arc(tasks, docs)
    output = root / "out"
    saved = sys.argv
    try:
        for model in (tiny_model, other):
            sys.argv = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                        "--tasks", name, "--include_path", str(tasks), "--device", "cpu", "--batch_size", "4",
                        "--output_path", str(output), "--log_samples"]
            cli_evaluate()
    finally:
        sys.argv = saved
    return output


def test_lm_eval_results_become_imported_runs(lm_eval_output: Path, tmp_path: Path) -> None:
    results_files = sorted(lm_eval_output.rglob("results_*.json"))
    assert len(results_files) == 2 and len(list(lm_eval_output.rglob("samples_*.jsonl"))) == 2
    store = tmp_path / "results"
    result = run_evalboard("import", "lm-eval", str(lm_eval_output), "--results", str(store))
    assert result.returncode == 0, result.stderr
    assert "2 run(s) imported" in result.stdout
    again = run_evalboard("import", "lm-eval", str(lm_eval_output), "--results", str(store))
    assert "0 run(s) imported, 2 already present" in again.stdout  # idempotent

    runs = list_runs(store)
    assert len(runs) == 2
    for results_file in results_files:
        original = json.loads(results_file.read_text())
        record = next(r for r in runs if r.imported is not None and r.imported.results_file == results_file.name)
        assert record.imported is not None and record.imported.from_ == "lm-eval"
        assert record.model.info["open_weights"] is True
        assert record.model.info["parameters"] == original["config"]["model_num_parameters"]
        entry = record.tasks["ref_arc_easy"]
        lm = original["results"]["ref_arc_easy"]
        assert entry.formulation == "loglikelihood" and entry.num_fewshot == 0
        assert entry.primary_metric == "acc"
        assert entry.metrics["acc"].value == lm["acc,none"]
        assert entry.metrics["acc_norm"].stderr == lm["acc_norm_stderr,none"]
        samples = load_run(record.path).load_samples("ref_arc_easy")
        raw = [json.loads(line) for line in next(results_file.parent.glob("samples_*.jsonl")).read_text().splitlines()]
        assert [s.scores["acc_norm"] for s in samples] == [r["acc_norm"] for r in raw]
        assert samples[0].prompt == raw[0]["arguments"]["gen_args_0"]["arg_0"]
        assert len(samples[0].responses) == len(samples[0].requests) == 4


def test_imported_runs_get_their_own_columns_and_ratings(lm_eval_output: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    run_evalboard("import", "lm-eval", str(lm_eval_output), "--results", str(store))
    build_leaderboard(store, tmp_path / "site" / "index.html", rounds=50, cache=False)
    scores = json.loads((tmp_path / "site" / "scores.json").read_text())
    assert [c["id"] for c in scores["columns"]] == ["ref_arc_easy|loglikelihood|0-shot|acc|lm-eval"]
    # labelled with the model's own name (its folder), not the path lm-eval loaded it from
    assert sorted(m["model"] for m in scores["models"]) == ["tiny-llama0", "tiny-other"]
    ratings = json.loads((tmp_path / "site" / "ratings.json").read_text())["ratings"]
    overall = [r for r in ratings if r["task"] == "(overall)"]
    assert len(overall) == 2 and all(r["items"] == 5 for r in overall)


def _as_lm_eval_arc_easy(lm_eval_output: Path, target: Path, edit_prompt: bool = False) -> Path:
    """The fixture's output as lm-eval names it when run on its own `arc_easy` (the Hub copy is
    unreachable here, so the fixture ran lm-eval's arc_easy config on the same local items under
    another name). `edit_prompt` changes one logged prompt: no longer the same requests."""
    for source in lm_eval_output.rglob("*_*.json*"):
        text = source.read_text().replace("ref_arc_easy", "arc_easy")
        if edit_prompt and source.name.startswith("samples_"):
            text = text.replace("Question:", "Q:", 1)
        out = target / source.relative_to(lm_eval_output).parent / source.name.replace("ref_arc_easy", "arc_easy")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return target


def test_an_imported_task_that_is_the_mirrored_one_joins_its_column(lm_eval_output: Path, tiny_model: Path,
                                                                     tmp_path: Path) -> None:
    import evalboard

    store = tmp_path / "results"
    own = evalboard.evaluate(f"hf:{tiny_model}", "arc_easy", limit=5, output_dir=store, label="evalboard-tiny")
    source = _as_lm_eval_arc_easy(lm_eval_output, tmp_path / "lm-eval")
    result = run_evalboard("import", "lm-eval", str(source), "--results", str(store))
    assert result.returncode == 0, result.stderr
    assert "joined: lm-eval arc_easy is evalboard's arc_easy" in result.stdout
    imported = [r for r in list_runs(store) if r.imported is not None]
    assert len(imported) == 2
    for record in imported:
        entry = record.tasks["arc_easy"]
        assert entry.task_fingerprint == own.tasks["arc_easy"].task_fingerprint  # evalboard's own
        assert entry.source_fingerprint and entry.source_fingerprint != entry.task_fingerprint  # lm-eval's kept
        assert entry.primary_metric == "acc_norm" and entry.items_hash == own.tasks["arc_easy"].items_hash
        ids = [s.doc_id for s in load_run(record.path).load_samples("arc_easy")]
        assert ids == [s.doc_id for s in own.samples["arc_easy"]]
    # the same model measured by both harnesses: the same numbers (lm-eval's hf backend vs ours)
    same = next(r for r in imported if r.model.label == "tiny-llama0")
    assert same.metric("arc_easy", "acc_norm") == pytest.approx(own.metric("arc_easy", "acc_norm"))

    build_leaderboard(store, tmp_path / "site" / "index.html", rounds=50, cache=False)
    scores = json.loads((tmp_path / "site" / "scores.json").read_text())
    assert [c["id"] for c in scores["columns"]] == ["arc_easy|loglikelihood|0-shot|acc_norm"]
    assert len(scores["models"]) == 3
    # an lm-eval-only column (the unjoined ref task) beside it leaves every average complete
    run_evalboard("import", "lm-eval", str(lm_eval_output), "--results", str(store))
    build_leaderboard(store, tmp_path / "site" / "index.html", rounds=50, cache=False)
    scores = json.loads((tmp_path / "site" / "scores.json").read_text())
    assert len(scores["columns"]) == 2
    from evalboard.leaderboard.runs import load_cells, model_infos
    from evalboard.leaderboard.table import score_table

    runs = list_runs(store)
    cells = load_cells(runs)
    table = score_table(cells, model_infos(cells, runs)).set_index("model")
    assert table.loc["evalboard-tiny", "columns_averaged"] == table.loc["evalboard-tiny", "columns_total"] == 1


def test_an_imported_task_asked_differently_keeps_its_own_column(lm_eval_output: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    source = _as_lm_eval_arc_easy(lm_eval_output, tmp_path / "lm-eval", edit_prompt=True)
    result = run_evalboard("import", "lm-eval", str(source), "--results", str(store))
    assert result.returncode == 0 and "joined" not in result.stdout, result.stdout + result.stderr
    assert {r.tasks["arc_easy"].source_fingerprint for r in list_runs(store)} == {None}
