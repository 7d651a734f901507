"""Suites: named sets of tasks scored together the way a leaderboard scored them.

A suite file (`tasks/suites/<name>.yaml`, data like a task file) lists benchmarks; a benchmark is
one or more tasks (BBH's 24 subtasks), the metric(s) read from each, and the shot count and
formulation its figure is defined with. A suite's score is the mean of its benchmarks'; a
benchmark's is the mean of its tasks' values. With `normalise: random_baseline` (the Open LLM
Leaderboard v2's rule) each task's value v is first rescaled from its random baseline
b = 1/choices: max(0, (v - b) / (1 - b)); a task without `choices` has baseline 0 (MATH, IFEval).
A `pooled` benchmark (GPQA's three sets) weighs its tasks by their item
counts (lm-eval's group score) and rescales that once.

A suite's average exists only when every member is there with the declared shot count and
formulation: anything else is reported as missing or mismatched, never averaged silently.
This module is core (no stage imports): the task side expands suite names, the leaderboard
averages stored results, both through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from evalboard.errors import UserError
from evalboard.paths import package_root
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SuiteTask(_Strict):
    choices: int | None = Field(default=None, gt=1)  # the random baseline is 1/choices; None: 0


class Benchmark(_Strict):
    name: str
    metrics: tuple[str, ...] = Field(strict=False, min_length=1)  # more than one: their mean (IFEval)
    num_fewshot: int = Field(ge=0)
    formulation: str = "loglikelihood"
    tasks: dict[str, SuiteTask] = Field(min_length=1)
    # pooled: the tasks' items weighted by their number, then normalised once (lm-eval's group
    # score, which the v2 leaderboard read for GPQA and MATH); else each task normalised, then averaged
    pooled: bool = False

    @model_validator(mode="after")
    def _pooled_shares_a_baseline(self) -> Benchmark:
        if self.pooled and len({task.choices for task in self.tasks.values()}) > 1:
            raise ValueError(f"benchmark {self.name}: pooled tasks must share one number of choices")
        return self


class Suite(_Strict):
    name: str
    description: str = ""
    mirrors: str = ""
    normalise: Literal["none", "random_baseline"] = "none"
    benchmarks: tuple[Benchmark, ...] = Field(strict=False, min_length=1)

    @property
    def tasks(self) -> list[str]:
        return [task for benchmark in self.benchmarks for task in benchmark.tasks]


def _suite_dir() -> Path:
    root = package_root("evalboard.tasks")
    assert root is not None  # evalboard.tasks is part of this package
    return root / "suites"


@cache
def builtin_suites() -> dict[str, Suite]:
    suites: dict[str, Suite] = {}
    for path in sorted(_suite_dir().glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            suite = Suite.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise UserError(f"suite file {path}: `{where}`: {first['msg']}") from None
        suites[suite.name] = suite
    return suites


def expand_suites(requested: list[str], available: Mapping[str, object]) -> tuple[list[str], dict[str, list[str]]]:
    """Suite names replaced by their member tasks, in order; and, per suite asked for, the members
    the catalogue doesn't have (yet), which the caller reports."""
    suites = builtin_suites()
    names: list[str] = []
    missing: dict[str, list[str]] = {}
    for name in requested:
        if name in suites and name not in available:
            members = suites[name].tasks
            names.extend(task for task in members if task in available)
            absent = [task for task in members if task not in available]
            if absent:
                missing[name] = absent
        else:
            names.append(name)
    return names, missing


@dataclass(frozen=True)
class TaskFigure:
    """What the suite needs of one task's stored result."""

    metrics: Mapping[str, float]
    num_fewshot: int
    formulation: str
    n_items: int = 1


@dataclass
class BenchmarkScore:
    name: str
    raw: float | None = None
    normalised: float | None = None
    missing: list[str] = field(default_factory=list)  # tasks with no result
    mismatched: list[str] = field(default_factory=list)  # "task: why" (shots, formulation, metric)


@dataclass
class SuiteScore:
    suite: str
    benchmarks: list[BenchmarkScore]

    @property
    def complete(self) -> bool:
        return all(b.raw is not None for b in self.benchmarks)

    @property
    def raw(self) -> float | None:
        return _mean([b.raw for b in self.benchmarks]) if self.complete else None

    @property
    def normalised(self) -> float | None:
        return _mean([b.normalised for b in self.benchmarks]) if self.complete else None

    def problems(self) -> list[str]:
        """One phrase per benchmark that keeps the average from existing."""
        out = []
        for b in self.benchmarks:
            if b.missing:
                out.append(f"{b.name}: no result for {', '.join(b.missing)}")
            out.extend(f"{b.name}: {why}" for why in b.mismatched)
        return out


def _mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present)


def normalised_value(value: float, choices: int | None) -> float:
    """The v2 leaderboard's rescaling from the random baseline 1/choices, clipped at 0."""
    if choices is None:
        return value
    baseline = 1.0 / choices
    return max(0.0, (value - baseline) / (1.0 - baseline))


def _task_value(task: str, benchmark: Benchmark, figures: Sequence[TaskFigure]) -> tuple[float | None, str | None, int]:
    """The task's value for the benchmark (the figure with its shot count and formulation), or
    why none fits; and its item count."""
    fitting = [f for f in figures if f.num_fewshot == benchmark.num_fewshot and f.formulation == benchmark.formulation]
    if not fitting:
        if not figures:
            return None, None, 0
        ran = ", ".join(sorted({f"{f.num_fewshot}-shot {f.formulation}" for f in figures}))
        return None, (f"{task} ran {ran}; the suite's figure is {benchmark.num_fewshot}-shot "
                      f"{benchmark.formulation}"), 0
    figure = fitting[0]
    absent = [m for m in benchmark.metrics if m not in figure.metrics]
    if absent:
        return None, f"{task} has no {', '.join(absent)}", 0
    return sum(figure.metrics[m] for m in benchmark.metrics) / len(benchmark.metrics), None, figure.n_items


def _benchmark_score(suite: Suite, benchmark: Benchmark, figures: Mapping[str, Sequence[TaskFigure]]) -> BenchmarkScore:
    score = BenchmarkScore(benchmark.name)
    values: list[tuple[float, int, int | None]] = []  # value, items, choices
    for task, member in benchmark.tasks.items():
        value, why, n_items = _task_value(task, benchmark, figures.get(task, ()))
        if why:
            score.mismatched.append(why)
        elif value is None:
            score.missing.append(task)
        else:
            values.append((value, n_items, member.choices if suite.normalise == "random_baseline" else None))
    if score.missing or score.mismatched:
        return score
    if benchmark.pooled:
        score.raw = sum(v * n for v, n, _ in values) / sum(n for _, n, _ in values)
        score.normalised = normalised_value(score.raw, values[0][2])
    else:
        score.raw = sum(v for v, _, _ in values) / len(values)
        score.normalised = sum(normalised_value(v, c) for v, _, c in values) / len(values)
    return score


def score_suite(suite: Suite, figures: Mapping[str, Sequence[TaskFigure]]) -> SuiteScore:
    """The suite's benchmarks scored from one model's task results (task name -> its figures, one
    per way it was measured; the one with the benchmark's shots and formulation is used)."""
    return SuiteScore(suite.name, [_benchmark_score(suite, b, figures) for b in suite.benchmarks])
