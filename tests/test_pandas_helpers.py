"""Results in pandas: `record.samples_df(task)`, `evalboard.results_df(dir)`, the record's short
summary in a notebook, and `to_dataframe()` with the model's label and spec."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pandas as pd
import pytest
from evalboard.records.run_record import load_run


@pytest.fixture(scope="module")
def two_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    results = tmp_path_factory.mktemp("pandas") / "results"
    cache = results.parent / "responses.sqlite"
    first = evalboard.evaluate(f"hf:{tiny_model}", "arc_easy", limit=6, output_dir=results, label="tiny",
                               cache=cache)
    again = evalboard.evaluate(f"hf:{tiny_model}", "arc_easy", limit=6, output_dir=results, label="tiny",
                               cache=cache)
    return results, [first, again]


def test_samples_df_has_one_row_per_item_with_the_pick(two_runs) -> None:
    results, (record, _) = two_runs
    for run in (record, load_run(record.path)):  # in memory and read back from disk
        frame = run.samples_df("arc_easy")
        assert len(frame) == 6 and list(frame["doc_id"]) == [s.doc_id for s in record.samples["arc_easy"]]
        assert {"index", "doc_id", "prompt", "target", "pick", "pick_norm", "acc", "acc_norm"} <= set(frame.columns)
        assert frame["prompt"].str.contains("Answer:").all()
        # the pick is the index the metric scored: acc is 1 exactly where the pick is the target
        assert ((frame["pick"] == frame["target"]).astype(float) == frame["acc"]).all()
        assert ((frame["pick_norm"] == frame["target"]).astype(float) == frame["acc_norm"]).all()
        assert frame["pick"].between(0, 3).all()
    with pytest.raises(KeyError, match="not a task of run"):
        record.samples_df("hellaswag")


def test_results_df_one_column_per_metric_current_runs_only(two_runs) -> None:
    results, (first, again) = two_runs
    frame = evalboard.results_df(results)
    assert len(frame) == 1 and frame.loc[0, "run_id"] == again.run_id and frame.loc[0, "status"] == "current"
    row = frame.iloc[0]
    assert row["model"] == "tiny" and row["spec"].startswith("hf:") and row["task"] == "arc_easy"
    assert row["acc"] == pytest.approx(again.metric("arc_easy", "acc"))
    assert row["acc_norm"] == pytest.approx(again.metric("arc_easy", "acc_norm"))
    assert row["acc_stderr"] == pytest.approx(again.tasks["arc_easy"].metrics["acc"].stderr)
    every = evalboard.results_df(results, all_runs=True)
    assert list(every["run_id"]) == [again.run_id, first.run_id]
    assert list(every["status"]) == ["current", "superseded"]
    assert evalboard.results_df(results.parent / "nothing-here").empty


def test_record_prints_a_short_summary_and_to_dataframe_has_label_and_spec(two_runs) -> None:
    _, (record, _) = two_runs
    text = repr(record)
    assert text.splitlines()[0] == f"RunRecord {record.run_id}: tiny ({record.model.spec})"
    assert "arc_easy: acc_norm" in text and "(n=6, loglikelihood, 0-shot)" in text and len(text.splitlines()) == 2
    html = record._repr_html_()
    assert "<table>" in html and "arc_easy" in html
    frame = record.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert set(frame["label"]) == {"tiny"} and set(frame["model"]) == {record.model.spec}
