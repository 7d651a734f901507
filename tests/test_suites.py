"""Suites: the v2 normalisation and averaging on known numbers, what keeps an average from
existing (missing members, other shot counts or formulations), `--tasks open_llm_v2` expanding to
its members, and the leaderboard's suite rows from stored runs."""

from __future__ import annotations

import pytest
from evalboard.suites import Benchmark, Suite, TaskFigure, builtin_suites, expand_suites, normalised_value, score_suite
from evalboard.taskdef.registry import discover_tasks, resolve_task_names


def _suite(**benchmark: object) -> Suite:
    return Suite(name="s", normalise="random_baseline", benchmarks=(Benchmark(name="b", **benchmark),))  # type: ignore[arg-type]


def test_normalisation_is_the_v2_rescaling_clipped_at_zero() -> None:
    assert normalised_value(0.625, 4) == pytest.approx(0.5)  # (0.625 - 0.25) / 0.75
    assert normalised_value(0.2, 4) == 0.0  # below chance: clipped
    assert normalised_value(0.3, None) == 0.3  # MATH / IFEval: baseline 0


def test_subtasks_are_normalised_then_averaged_and_pooled_sets_weighted_by_size() -> None:
    per_subtask = _suite(metrics=("acc_norm",), num_fewshot=3, tasks={"a": {"choices": 2}, "b": {"choices": 5}})
    figures = {"a": [TaskFigure({"acc_norm": 0.75}, 3, "loglikelihood", 10)],
               "b": [TaskFigure({"acc_norm": 0.1}, 3, "loglikelihood", 90)]}
    score = score_suite(per_subtask, figures)
    assert score.raw == pytest.approx((0.75 + 0.1) / 2)
    assert score.normalised == pytest.approx((0.5 + 0.0) / 2)
    pooled = _suite(metrics=("acc_norm",), num_fewshot=3, pooled=True, tasks={"a": {"choices": 4}, "b": {"choices": 4}})
    score = score_suite(pooled, figures)
    assert score.raw == pytest.approx(0.75 * 0.1 + 0.1 * 0.9)
    assert score.normalised == pytest.approx(normalised_value(0.165, 4))


def test_metrics_listed_together_are_averaged() -> None:
    ifeval = _suite(metrics=("p", "i"), num_fewshot=0, formulation="generate", tasks={"ifeval": {}})
    score = score_suite(ifeval, {"ifeval": [TaskFigure({"p": 0.2, "i": 0.4}, 0, "generate")]})
    assert score.raw == pytest.approx(0.3) and score.normalised == pytest.approx(0.3)


def test_no_average_with_a_missing_member_or_another_shot_count_or_formulation() -> None:
    suite = _suite(metrics=("acc",), num_fewshot=5, tasks={"a": {"choices": 4}, "b": {"choices": 4}})
    only_a = score_suite(suite, {"a": [TaskFigure({"acc": 0.5}, 5, "loglikelihood")]})
    assert only_a.raw is None and only_a.normalised is None and only_a.problems() == ["b: no result for b"]
    other_shots = score_suite(suite, {"a": [TaskFigure({"acc": 0.5}, 0, "loglikelihood")],
                                      "b": [TaskFigure({"acc": 0.5}, 5, "generative")]})
    assert other_shots.raw is None
    assert other_shots.problems() == ["b: a ran 0-shot loglikelihood; the suite's figure is 5-shot loglikelihood",
                                      "b: b ran 5-shot generative; the suite's figure is 5-shot loglikelihood"]
    # the figure that fits is found among the task's other measurements
    both = score_suite(suite, {"a": [TaskFigure({"acc": 0.1}, 0, "loglikelihood"), TaskFigure({"acc": 0.5}, 5, "loglikelihood")],
                               "b": [TaskFigure({"acc": 0.7}, 5, "loglikelihood")]})
    assert both.raw == pytest.approx(0.6)


def test_builtin_suites_name_the_leaderboards_members() -> None:
    suites = builtin_suites()
    v1, v2 = suites["open_llm_v1"], suites["open_llm_v2"]
    assert [b.name for b in v2.benchmarks] == ["IFEval", "BBH", "MATH Level 5", "GPQA", "MuSR", "MMLU-Pro"]
    assert [b.name for b in v1.benchmarks] == ["ARC", "HellaSwag", "MMLU", "TruthfulQA", "Winogrande", "GSM8K"]
    assert len(v2.benchmarks[1].tasks) == 24 and v2.benchmarks[-1].tasks["leaderboard_mmlu_pro"].choices == 10
    assert list(v2.benchmarks[2].tasks) == ["leaderboard_math_hard"]
    assert v1.benchmarks[2].metrics == ("acc_macro",)  # the v1 leaderboard's unweighted mean of the 57 subjects
    available = discover_tasks()
    for suite in (v1, v2):
        assert [t for t in suite.tasks if t not in available] == [], suite.name


def test_run_tasks_open_llm_v2_expands_to_its_members_and_names_the_missing(caplog: pytest.LogCaptureFixture) -> None:
    available = discover_tasks()
    names = resolve_task_names(["open_llm_v2"], available)
    suite = builtin_suites()["open_llm_v2"]
    assert names == suite.tasks and "leaderboard_math_hard" in names
    assert expand_suites(["open_llm_v2"], available)[1] == {} and "open_llm_v2" not in caplog.text
    # a member the catalogue lacks is named, and the others still run
    without_math = {name: spec for name, spec in available.items() if name != "leaderboard_math_hard"}
    assert resolve_task_names(["open_llm_v2"], without_math) == [t for t in suite.tasks if t != "leaderboard_math_hard"]
    assert "suite open_llm_v2: 1 member task(s)" in caplog.text and "leaderboard_math_hard" in caplog.text


def test_the_leaderboard_shows_a_suites_average_only_when_it_is_complete(tmp_path) -> None:  # noqa: ANN001
    import re

    from evalboard.leaderboard.build import build_leaderboard
    from synthetic_runs import write_scored_run

    suite = builtin_suites()["open_llm_v1"]
    for model, winogrande_shots in (("complete", 5), ("zero-shot winogrande", 0)):
        for k, benchmark in enumerate(suite.benchmarks):
            (task,) = benchmark.tasks
            shots = winogrande_shots if task == "winogrande_5shot" else benchmark.num_fewshot
            write_scored_run(tmp_path / "results", model, task, benchmark.metrics[0], [1.0, 0.0, 1.0, 1.0] if k else [0.0, 1.0],
                             f"2026-01-01T00:0{k}:00+00:00", formulation=benchmark.formulation, num_fewshot=shots)
    page = build_leaderboard(tmp_path / "results", tmp_path / "out" / "index.html", rounds=0).page.read_text(encoding="utf-8")
    section = page[page.index('<section id="suites">'):page.index('<section id="ratings">')]
    rows = {m: line for line in re.findall(r"<tr><td[^>]*>open_llm_v1</td>.*?</tr>", section, re.S)
            for m in ("complete", "zero-shot winogrande") if f"<td>{m}</td>" in line}
    # raw mean of the six: ARC 0.5, the other five 0.75
    assert '<td class="num">70.8</td>' in rows["complete"] and "n/a" in rows["complete"]
    assert '<td class="num">—</td>' in rows["zero-shot winogrande"]
    assert "winogrande_5shot ran 0-shot loglikelihood; the suite&#39;s figure is 5-shot" in rows["zero-shot winogrande"]
