"""`evalboard compare` logic on hand-built run records: pairing by id, the tests chosen, Holm,
verdicts, lists of changed items, forgetting, bad input, the reports and the command's exit codes.
(The statistics themselves are checked against known values in test_stats.py; the end-to-end
adapter workflow with real models is in test_compare_adapter.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cli_helpers import run_cli
from compare_helpers import binary, compare_cli, make_record
from evalboard import stats
from evalboard.comparison.compare import compare_runs
from evalboard.comparison.compare_report import format_table, to_html, to_json_text, to_markdown
from evalboard.errors import UserError
from evalboard.records.store import save_run

# 20 items: the base gets the first 10 right; the candidate loses items 0-1 and gains items 10-17.
BASE_20 = binary("q", "1" * 10 + "0" * 10)
CAND_20 = binary("q", "00" + "1" * 8 + "1" * 8 + "00")


def test_items_are_paired_by_id_not_by_position() -> None:
    base = make_record("base", {"t": BASE_20})
    candidate = make_record("cand", {"t": list(reversed(CAND_20))})  # another order on disk
    (task,) = compare_runs(base, candidate).tasks
    assert task.n == 20 and task.n_excluded == 0
    assert (task.base_score, task.candidate_score) == (0.5, 0.8)
    assert task.diff == pytest.approx(0.3)
    assert task.test == "mcnemar_exact"
    # exact McNemar with 2 lost and 8 gained: 2 * P[Binomial(10, 1/2) <= 2] = 2 * 56 / 1024
    assert task.p_value == pytest.approx(112 / 1024)
    assert [i.doc_id for i in task.better] == [f"q-{i}" for i in range(10, 18)]
    assert [i.doc_id for i in task.worse] == ["q-0", "q-1"]
    assert task.worse[0].base_score == 1.0 and task.worse[0].candidate_score == 0.0
    # the interval inverts the same exact test: p > 0.05, so it must include 0 (a normal interval
    # would not: [+0.012, +0.588])
    expected = stats.mcnemar_exact_ci(2, 8, 20)
    assert (task.ci_low, task.ci_high) == pytest.approx((expected.ci_low, expected.ci_high))
    assert task.ci_low < 0 < task.ci_high
    # one pick shown per side: the base preferred " yes" (logprob -1.0) where it was right
    assert task.worse[0].base_answer == "yes" and task.worse[0].candidate_answer == "no"
    assert task.worse[0].target == "yes"  # the gold index 0, shown as its choice


def test_holm_correction_decides_the_verdicts() -> None:
    tasks_base = {"big": binary("b", "0" * 10), "small": binary("s", "0" * 8 + "1"),
                  "flat": binary("f", "000111")}
    tasks_cand = {"big": binary("b", "1" * 10), "small": binary("s", "1" * 8 + "0"),
                  "flat": binary("f", "111000")}
    comparison = compare_runs(make_record("a", tasks_base), make_record("b", tasks_cand))
    by_task = {t.task: t for t in comparison.tasks}
    raw = {"big": 2 * 0.5**10, "small": 2 * 10 / 512, "flat": 1.0}
    for name, p in raw.items():
        assert by_task[name].p_value == pytest.approx(p)
    # Holm: sorted p (big, small, flat) times (3, 2, 1), running maximum
    assert by_task["big"].p_adjusted == pytest.approx(3 * raw["big"])
    assert by_task["small"].p_adjusted == pytest.approx(2 * raw["small"])
    assert by_task["flat"].p_adjusted == 1.0
    assert by_task["small"].p_value < 0.05 < by_task["small"].p_adjusted  # significant only uncorrected
    assert [t.verdict for t in comparison.tasks] == ["improved", "no significant change", "no significant change"]
    assert comparison.counts() == {"improved": 1, "regressed": 0, "no significant change": 2}


def test_regressions_and_forgetting_follow_trained_on() -> None:
    base = make_record("a", {"skill": binary("k", "0" * 12), "general": binary("g", "1" * 12),
                             "other": binary("o", "1" * 12)})
    candidate = make_record("b", {"skill": binary("k", "1" * 12), "general": binary("g", "0" * 12),
                                  "other": binary("o", "1" * 11 + "0")})
    comparison = compare_runs(base, candidate, trained_on=["skill"])
    roles = {t.task: (t.role, t.verdict) for t in comparison.tasks}
    assert roles == {"skill": ("trained", "improved"), "general": ("held-out", "regressed"),
                     "other": ("held-out", "no significant change")}
    assert [t.task for t in comparison.forgetting] == ["general"]
    assert [t.task for t in comparison.regressions()] == ["general"]
    assert comparison.regressions(threshold=1.0) == []  # the drop is exactly 1.0, not more
    assert [t.task for t in comparison.regressions(threshold=0.5)] == ["general"]
    # Trained-on regressions are regressions, but not forgetting.
    flipped = compare_runs(candidate, base, trained_on=["general"])
    assert [t.task for t in flipped.regressions()] == ["skill"]
    assert [t.task for t in flipped.forgetting] == ["skill"]
    assert [t.task for t in compare_runs(candidate, base, trained_on=["skill"]).forgetting] == []
    # Without --trained-on there are no roles and every regression counts.
    plain = compare_runs(base, candidate)
    assert {t.role for t in plain.tasks} == {None}
    assert [t.task for t in plain.forgetting] == ["general"]


def test_continuous_scores_use_the_paired_bootstrap() -> None:
    base_scores = [(f"d{i}", 0.1 * (i % 7)) for i in range(40)]
    cand_scores = [(d, v + 0.05 + 0.01 * (i % 3)) for i, (d, v) in enumerate(base_scores)]
    comparison = compare_runs(make_record("a", {"f1": base_scores}, metric="f1"),
                              make_record("b", {"f1": cand_scores}, metric="f1"))
    (task,) = comparison.tasks
    assert task.test == "paired_bootstrap" and task.metric == "f1"
    expected = stats.paired_bootstrap([v for _, v in cand_scores], [v for _, v in base_scores], seed=0)
    assert (task.diff, task.ci_low, task.ci_high, task.p_value) == pytest.approx(tuple(expected))
    assert task.verdict == "improved" and len(task.better) == 40 and not task.worse
    # largest moves listed first
    moves = [i.candidate_score - i.base_score for i in task.better]
    assert moves == sorted(moves, reverse=True)


def test_lower_is_better_metrics_flip_the_direction() -> None:
    base = make_record("a", {"ppl": [(f"d{i}", 10.0 + i % 5) for i in range(30)]}, metric="ppl",
                       higher_is_better=False)
    cand = make_record("b", {"ppl": [(f"d{i}", 8.0 + i % 5) for i in range(30)]}, metric="ppl",
                       higher_is_better=False)
    (task,) = compare_runs(base, cand).tasks
    assert task.diff == pytest.approx(-2.0)
    assert task.verdict == "improved" and len(task.better) == 30
    (reverse,) = compare_runs(cand, base).tasks
    assert reverse.verdict == "regressed" and len(reverse.worse) == 30


def test_per_instruction_scores_are_compared_instruction_by_instruction() -> None:
    base = make_record("a", {"ifeval": [("p1", [1, 0, 0]), ("p2", [0]), ("p3", [1, 1])]}, metric="inst")
    cand = make_record("b", {"ifeval": [("p1", [1, 1, 1]), ("p2", [1]), ("p3", [1, 0])]}, metric="inst")
    (task,) = compare_runs(base, cand).tasks
    assert task.n == 6 and task.test == "mcnemar_exact"
    assert [i.doc_id for i in task.better] == ["p1#1", "p1#2", "p2#0"]
    assert [i.doc_id for i in task.worse] == ["p3#1"]
    assert task.diff == pytest.approx(2 / 6)


def test_failed_items_are_left_out_and_noted() -> None:
    base = make_record("a", {"t": BASE_20}, errors=["q-3"])
    cand = make_record("b", {"t": CAND_20}, errors=["q-12"])
    comparison = compare_runs(base, cand)
    (task,) = comparison.tasks
    assert (task.n, task.n_excluded) == (18, 2)
    assert "q-12" not in [i.doc_id for i in task.better]
    assert any("2 item(s) failed" in note for note in comparison.notes)


def test_tasks_only_in_one_run_are_skipped_or_refused_when_asked_for() -> None:
    base = make_record("a", {"t": BASE_20, "only_a": BASE_20})
    cand = make_record("b", {"t": CAND_20, "only_b": CAND_20})
    comparison = compare_runs(base, cand)
    assert [t.task for t in comparison.tasks] == ["t"]
    assert comparison.skipped == {"only_a": "only in the base run", "only_b": "only in the candidate run"}
    with pytest.raises(UserError, match="only_a .not in the candidate run"):
        compare_runs(base, cand, tasks=["t", "only_a"])
    with pytest.raises(UserError, match="share no task"):
        compare_runs(make_record("a", {"x": BASE_20}), make_record("b", {"y": BASE_20}))
    with pytest.raises(UserError, match="--trained-on names task.* nope"):
        compare_runs(base, cand, trained_on=["nope"])


@pytest.mark.parametrize(
    "overrides,settings,fragments",
    [
        ({"num_fewshot": 5}, {}, ["num_fewshot 0 vs 5"]),
        ({"formulation": "generative", "num_fewshot": 5}, {}, ["formulation loglikelihood vs generative",
                                                               "num_fewshot 0 vs 5"]),
        ({}, {"seed": 7}, ["seed (few-shot sampling) 1234 vs 7"]),
        ({"data_origin": "package:other"}, {}, ["data source local:x vs package:other"]),
        ({}, {}, ["task definition, its data items or its few-shot pool"]),
    ],
)
def test_different_task_fingerprints_are_refused_naming_what_differs(overrides, settings, fragments) -> None:
    base = make_record("a", {"t": BASE_20})
    cand = make_record("b", {"t": CAND_20}, fingerprints={"t": "other"}, entry_overrides={"t": overrides},
                       settings=settings)
    with pytest.raises(UserError) as error:
        compare_runs(base, cand)
    message = str(error.value)
    assert message.startswith("task t was not asked the same way in the two runs")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_different_items_and_the_same_run_are_refused() -> None:
    base = make_record("a", {"t": BASE_20})
    with pytest.raises(UserError, match=r"different items \(base 20, candidate 15, 15 in common\)"):
        compare_runs(base, make_record("b", {"t": CAND_20[:15]}))
    with pytest.raises(UserError, match="different items"):
        compare_runs(base, make_record("b", {"t": binary("z", "1" * 20)}))
    with pytest.raises(UserError, match="same run"):
        compare_runs(base, base)
    with pytest.raises(UserError, match="--alpha"):
        compare_runs(base, make_record("b", {"t": CAND_20}), alpha=1.5)


def test_same_model_is_noted() -> None:
    comparison = compare_runs(make_record("a", {"t": BASE_20}, model_fp="m"),
                              make_record("b", {"t": BASE_20}, model_fp="m"))
    assert comparison.tasks[0].verdict == "no significant change" and comparison.tasks[0].p_value == 1.0
    assert any("same model" in note for note in comparison.notes)


# --- reports -----------------------------------------------------------------------------


def _forgetting_comparison():
    base = make_record("base-run", {"skill": binary("k", "0" * 12), "general": binary("g", "1" * 12)})
    cand = make_record("cand-run", {"skill": binary("k", "1" * 12), "general": binary("g", "0" * 12)})
    # untrusted text in a prompt must stay text in the HTML report
    cand.samples["general"][0].prompt = base.samples["general"][0].prompt = "<script>alert(1)</script>"
    return compare_runs(base, cand, trained_on=["skill"])


def test_terminal_table_and_markdown_say_what_changed() -> None:
    comparison = _forgetting_comparison()
    table = format_table(comparison)
    assert "base:      hf:base-run  (run base-run)" in table
    row = next(line for line in table.splitlines() if line.startswith("general"))
    for cell in ("held-out", "acc", "12", "1.000", "0.000", "-1.000", "McNemar", "+0 / -12", "▼ regressed"):
        assert cell in row
    assert "general regressed: 1.000 -> 0.000 (-1.000" in table
    assert "general: worse on 12: g-0, g-1, g-2, g-3, g-4, … 7 more" in table
    markdown = to_markdown(comparison)
    assert "| skill | trained | acc | 12 | 0.000 | 1.000 | +1.000 |" in markdown
    assert "## Forgetting" in markdown and "- general regressed" in markdown
    assert "### Worse in the candidate (12)" in markdown and "| `g-0` |" in markdown


def test_html_report_escapes_model_text_and_lists_changes() -> None:
    html = to_html(_forgetting_comparison())
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-task="general" data-verdict="regressed"' in html
    assert 'data-task="skill" data-verdict="improved"' in html
    assert "Worse in the candidate (12)" in html and "Trained on: skill" in html


def test_json_report_is_strict_json_with_everything() -> None:
    comparison = _forgetting_comparison()
    comparison.tasks[0].ci_low = math.nan  # e.g. one item: no interval
    data = json.loads(to_json_text(comparison), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["schema"] == "evalboard.comparison.compare/1" and data["correction"] == "holm"
    assert data["forgetting"] == ["general"] and data["trained_on"] == ["skill"]
    skill, general = data["tasks"]
    assert skill["ci_low"] is None and skill["binary"] is True
    assert general["verdict"] == "regressed" and len(general["worse"]) == 12
    assert general["worse"][0]["doc_id"] == "g-0" and general["p_adjusted"] < 0.05


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def saved_runs(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    save_run(results, make_record("20250101-base-aaaa", {"skill": binary("k", "0" * 12),
                                                         "general": binary("g", "1" * 12)}))
    save_run(results, make_record("20250101-cand-bbbb", {"skill": binary("k", "1" * 12),
                                                         "general": binary("g", "1" * 10 + "00")}))
    save_run(results, make_record("20250101-bad-cccc", {"skill": binary("k", "0" * 12),
                                                        "general": binary("g", "0" * 12)}))
    return results


def test_compare_saved_runs_writes_every_report(saved_runs, tmp_path, capsys, monkeypatch) -> None:
    reports = tmp_path / "reports"
    code, out, _ = compare_cli(capsys, monkeypatch, "20250101-base-aaaa", "20250101-cand-bbbb",
                               "--results", saved_runs, "--trained-on", "skill",
                               "--markdown", reports / "c.md", "--html", reports / "c.html",
                               "--json", reports / "c.json", "--fail-on-regression")
    assert code == 0, out
    assert "improved" in out and "No significant regression on held-out tasks" in out
    data = json.loads((reports / "c.json").read_text())
    assert {t["task"]: t["verdict"] for t in data["tasks"]} == {"skill": "improved",
                                                                "general": "no significant change"}
    assert (reports / "c.md").read_text().startswith("# Comparison: hf:20250101-cand-bbbb vs hf:20250101-base-aaaa")
    assert "<table" in (reports / "c.html").read_text()
    # paths and unique prefixes work as well as ids
    code, out, _ = compare_cli(capsys, monkeypatch, saved_runs / "20250101-base-aaaa",
                               saved_runs / "20250101-cand-bbbb" / "run.json")
    assert code == 0 and "skill" in out
    code, out, _ = compare_cli(capsys, monkeypatch, "20250101-base", "20250101-cand", "--results", saved_runs)
    assert code == 0 and "20250101-cand-bbbb" in out


def test_fail_on_regression_exits_1_above_the_threshold(saved_runs, capsys, monkeypatch) -> None:
    args = ("20250101-base-aaaa", "20250101-bad-cccc", "--results", saved_runs, "--trained-on", "skill")
    code, out, err = compare_cli(capsys, monkeypatch, *args)
    assert code == 0 and "general regressed: 1.000 -> 0.000" in out  # reported, but no gate asked for
    code, _, err = compare_cli(capsys, monkeypatch, *args, "--fail-on-regression")
    assert code == 1
    assert err.strip() == "evalboard: 1 task(s) regressed significantly: general (-1.000)"
    code, _, _ = compare_cli(capsys, monkeypatch, *args, "--fail-on-regression", "0.5")
    assert code == 1
    code, _, _ = compare_cli(capsys, monkeypatch, *args, "--fail-on-regression=1.0")
    assert code == 0  # a drop of exactly 1.0 is not more than 1.0


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["20250101-base-aaaa", "nope"], ["run 'nope' not found", "--results"]),
        (["20250101-base-aaaa", "20250101-base-aaaa"], ["same run"]),
        (["20250101-", "20250101-cand-bbbb"], ["ambiguous", "3 run ids"]),
        (["20250101-base-aaaa"], ["give two runs"]),
        (["20250101-base-aaaa", "20250101-cand-bbbb", "--limit", "5"], ["--limit only apply when evaluating"]),
        (["20250101-base-aaaa", "20250101-cand-bbbb", "--trained-on", "x"], ["--trained-on", "x"]),
        (["20250101-base-aaaa", "20250101-cand-bbbb", "--tasks", "zzz"], ["cannot compare zzz"]),
        (["a", "b", "--base", "hf:x"], ["not both"]),
        (["--base", "hf:x"], ["needs both --base"]),
        (["--base", "hf:x", "--candidate", "hf:x", "--tasks", "arc_easy"], ["same model"]),
        (["20250101-base-aaaa", "20250101-cand-bbbb", "--label", "x"], ["--base-label"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(saved_runs, capsys, monkeypatch, args, fragments) -> None:
    code, out, err = compare_cli(capsys, monkeypatch, *args, "--results", saved_runs)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalboard: error:"), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_non_number_threshold_is_a_usage_error(saved_runs, capsys, monkeypatch) -> None:
    code, _, err = compare_cli(capsys, monkeypatch, "--fail-on-regression", "20250101-base-aaaa",
                               "20250101-cand-bbbb", "--results", saved_runs)
    assert code == 2 and "give the runs before --fail-on-regression" in err and len(err.strip().splitlines()) == 1


def test_compare_is_registered_in_the_real_command(saved_runs) -> None:
    """Needs `compare` in evalboard.cli.COMMAND_MODULES."""
    result = run_cli("compare", "20250101-base-aaaa", "20250101-bad-cccc", "--results", str(saved_runs),
                     "--fail-on-regression")
    assert result.returncode == 1, result.stderr
    assert "regressed" in result.stdout


def test_an_unwritable_report_path_is_a_one_line_error(saved_runs, tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "taken").mkdir()
    code, out, err = compare_cli(capsys, monkeypatch, "20250101-base-aaaa", "20250101-cand-bbbb",
                                 "--results", saved_runs, "--json", tmp_path / "taken")
    assert code == 2 and "could not write the report" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.glob(".taken*")] == []  # no staged file left behind


def test_missing_samples_or_unpaired_metrics_are_one_line_errors(saved_runs, capsys, monkeypatch) -> None:
    (saved_runs / "20250101-cand-bbbb" / "samples" / "skill.jsonl").unlink()
    code, _, err = compare_cli(capsys, monkeypatch, "20250101-base-aaaa", "20250101-cand-bbbb", "--results", saved_runs)
    assert code == 2 and "candidate run 20250101-cand-bbbb has no readable samples for task skill" in err
    base = make_record("a", {"t": BASE_20}, entry_overrides={"t": {"primary_metric": "acc_macro"}})
    cand = make_record("b", {"t": CAND_20}, entry_overrides={"t": {"primary_metric": "acc_macro"}})
    with pytest.raises(UserError, match="primary metric acc_macro has no per-item scores"):
        compare_runs(base, cand)
