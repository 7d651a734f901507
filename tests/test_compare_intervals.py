"""Compare says one thing: the interval agrees with the test, the minimum detectable difference,
the sentences explaining p and the interval, `--metric`, and the --results / --output folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from compare_helpers import binary, compare_cli, make_record
from evalboard import stats
from evalboard.comparison.compare import compare_runs
from evalboard.comparison.compare_report import format_table, to_html, to_markdown
from evalboard.records.store import save_run


@pytest.mark.parametrize("n", [12, 20, 60])
def test_the_exact_interval_excludes_zero_exactly_when_mcnemar_is_significant(n: int) -> None:
    for up in range(n + 1):
        for down in range(n + 1 - up):
            p = stats.mcnemar_exact(down, up)
            result = stats.mcnemar_exact_ci(down, up, n)
            assert result.ci_low <= result.diff <= result.ci_high
            excludes_zero = result.ci_low > 0 or result.ci_high < 0
            assert excludes_zero == (p < 0.05), (up, down, p, result)


def test_the_bootstrap_interval_excludes_zero_exactly_when_its_p_is_significant() -> None:
    """Skewed per-item differences (12 items, exponential): the resampled means are skewed, where a
    percentile interval and the shifted-null p can disagree; the interval the test inverts cannot."""
    import numpy as np

    disagreed = 0
    for seed in range(300):
        d = np.random.default_rng(seed).exponential(1.0, 12) - 0.75
        result = stats.paired_bootstrap(d, np.zeros(12), rounds=999, seed=seed)
        excludes_zero = result.ci_low > 0 or result.ci_high < 0
        assert result.ci_low <= result.diff <= result.ci_high
        assert excludes_zero == (result.p_value <= 0.05), (seed, result)
        resampled = stats._bootstrap_means(d, 999, np.random.default_rng(seed))
        low, high = np.quantile(resampled, [0.025, 0.975])
        disagreed += (low > 0 or high < 0) != (result.p_value <= 0.05)
    assert disagreed > 0  # the percentile interval would have said two things on these


def test_several_tasks_say_the_intervals_are_per_task_and_the_verdict_holm() -> None:
    # +6 / -0 of 20 on each of three tasks: p = 0.031 each, the interval excludes 0, and Holm's
    # p = 0.094 gives no significant change
    tasks = {name: binary("q", "0" * 6 + "1" * 14) for name in ("a", "b", "c")}
    base = make_record("base", tasks)
    cand = make_record("cand", {name: binary("q", "1" * 20) for name in tasks})
    comparison = compare_runs(base, cand)
    for task in comparison.tasks:
        assert task.p_value < 0.05 < task.p_adjusted and task.ci_low > 0
        assert task.verdict == "no significant change"
    for text in (format_table(comparison), to_markdown(comparison), to_html(comparison)):
        assert "interval is its own, unadjusted for the 3 tasks" in text
        assert "after Holm&#39;s correction" in text or "after Holm's correction" in text
    single = compare_runs(make_record("base", {"a": tasks["a"]}), make_record("cand", {"a": binary("q", "1" * 20)}))
    assert "unadjusted" not in format_table(single) and single.tasks[0].verdict == "improved"


def test_four_gained_none_lost_of_twenty_is_one_story() -> None:
    """The issue's case: +4 / -0 of 20 has p = 0.125, so the interval must include 0."""
    base = make_record("base", {"t": binary("q", "0" * 4 + "1" * 8 + "0" * 8)})
    cand = make_record("cand", {"t": binary("q", "1" * 4 + "1" * 8 + "0" * 8)})
    (task,) = compare_runs(base, cand).tasks
    assert task.p_value == pytest.approx(0.125) and task.verdict == "no significant change"
    assert task.ci_low < 0 < task.ci_high and task.ci_high == pytest.approx(0.2)
    # Clopper-Pearson of 4/4 at 95%: [0.025 ** (1/4), 1]; scaled by 4/20 around 2 * theta - 1
    assert task.ci_low == pytest.approx(0.2 * (2 * 0.025 ** 0.25 - 1))
    # six changes in one direction are the fewest that can be significant: MDD >= 6/20
    assert task.mdd >= 0.3 and task.mdd == pytest.approx(max(0.3, 2.8016 * 0.4104 / 20 ** 0.5), abs=1e-3)


def test_minimum_detectable_difference_shrinks_with_more_items() -> None:
    spread = [1.0, -1.0, 0.0, 0.5]
    small = stats.minimum_detectable_difference(spread * 5, binary=False)
    large = stats.minimum_detectable_difference(spread * 500, binary=False)
    assert large == pytest.approx(small * (20 / 2000) ** 0.5, rel=0.05)
    assert stats.minimum_detectable_difference([0.0] * 100, binary=True) == pytest.approx(0.06)


def test_reports_explain_p_and_the_interval_and_show_the_mdd() -> None:
    base = make_record("base", {"t": binary("q", "0" * 20)})
    cand = make_record("cand", {"t": binary("q", "1" * 10 + "0" * 10)})
    comparison = compare_runs(base, cand)
    for text in (format_table(comparison), to_markdown(comparison), to_html(comparison)):
        assert "95% CI" in text and "MDD" in text
        assert "p is the probability of a difference at least this large" in text
        assert "interval is the range of true differences" in text
    comparison = compare_runs(base, cand, alpha=0.1)
    assert "90% CI" in format_table(comparison)


@pytest.fixture
def two_metric_runs(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    for run_id, acc in (("run-base", "0" * 12), ("run-cand", "1" * 12)):
        record = make_record(run_id, {"t": binary("q", acc)}, metric="acc_norm")
        for line in record.samples["t"]:
            line.scores["acc"] = 1.0  # acc did not move, acc_norm did
        save_run(results, record)
    return results


def test_metric_beside_the_primary_one(two_metric_runs: Path, capsys, monkeypatch) -> None:
    code, out, _ = compare_cli(capsys, monkeypatch, "run-base", "run-cand", "--results", two_metric_runs)
    assert code == 0 and "acc_norm" in out and "improved" in out
    code, out, _ = compare_cli(capsys, monkeypatch, "run-base", "run-cand", "--results", two_metric_runs,
                               "--metric", "acc", "--json", two_metric_runs.parent / "c.json")
    assert code == 0
    (task,) = json.loads((two_metric_runs.parent / "c.json").read_text())["tasks"]
    assert task["metric"] == "acc" and task["verdict"] == "no significant change" and task["diff"] == 0
    code, _, err = compare_cli(capsys, monkeypatch, "run-base", "run-cand", "--results", two_metric_runs,
                               "--metric", "f1")
    assert code == 2 and "no per-item f1 scores" in err and "acc_norm, acc" in err
    assert len(err.strip().splitlines()) == 1


def test_output_and_results_are_one_folder(two_metric_runs: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    code, out, _ = compare_cli(capsys, monkeypatch, "run-base", "run-cand", "--output", two_metric_runs)
    assert code == 0 and "run-cand" in out  # --output finds saved runs as --results does
    code, _, err = compare_cli(capsys, monkeypatch, "run-base", "run-cand", "--results", two_metric_runs,
                               "--output", tmp_path / "elsewhere")
    assert code == 2 and "--output" in err and "--results" in err and "give one of them" in err


def test_compare_help_shows_a_plain_percent_sign() -> None:
    out = subprocess.run([sys.executable, "-m", "evalboard.cli", "compare", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "95% interval" in out and "%%" not in out
