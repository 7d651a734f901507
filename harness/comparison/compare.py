"""Compare two runs task by task: did the candidate (say, base + a LoRA adapter) beat the base,
by how much, is the difference real, and what regressed.

Pure functions over two RunRecords (no printing, no files): `compare_runs(base, candidate)`.

- Items are paired by `doc_id`, and only within a task asked the same way in both runs (same
  task fingerprint: definition, data, few-shot pool, formulation, prompt settings). Anything else
  is a UserError naming what differs.
- The per-item scores of the task's primary metric (or another metric both runs scored, `metric=`)
  are tested in pairs: exact McNemar when every score is 0/1 (accuracy-like), a paired bootstrap
  otherwise. The difference (candidate - base) gets a 95% interval consistent with its test: the
  exact conditional interval that inverts McNemar's test for 0/1 scores (`stats.mcnemar_exact_ci`:
  it excludes 0 exactly when the unadjusted p < 0.05), otherwise the interval the bootstrap's
  shifted-null test inverts (`stats.paired_bootstrap`: it excludes 0 exactly when p <= alpha).
  Intervals are per task, at the unadjusted level; the reports say so beside Holm's verdicts.
  Each task also reports the minimum detectable difference at its sample size (80% power at
  alpha), so "no significant change" can be read as "no change larger than this".
- p-values are Holm-adjusted across the compared tasks (one family per comparison), and the
  verdict uses the adjusted value: a suite of ten tasks should not "find" a regression by chance.
- A score that is a list (IFEval's per-instruction results) is compared instruction by
  instruction, matching how its metric pools instructions; such units are named `doc_id#k`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from evalboard import stats
from evalboard.comparison.arena_result import ArenaHeadToHead
from evalboard.errors import UserError
from evalboard.records.frames import choice_pick
from evalboard.records.run_record import RunRecord, SampleLine
from pydantic import BaseModel

SCHEMA = "evalboard.comparison.compare/1"
DEFAULT_ALPHA = 0.05
BOOTSTRAP_ROUNDS = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same two runs always give the same report

Verdict = Literal["improved", "regressed", "no significant change"]
Role = Literal["trained", "held-out"]
TestName = Literal["mcnemar_exact", "paired_bootstrap"]

# Run settings that change the questions a task asks (and so its fingerprint), with the words
# used to explain a fingerprint mismatch.
_TASK_FIELDS = (
    ("num_fewshot", "num_fewshot"),
    ("formulation", "formulation"),
    ("generation", "generation parameters"),
    ("samples_per_item", "samples per item"),
)
_SETTING_FIELDS = (
    ("seed", "seed (few-shot sampling)"),
    ("style", "prompt style (chat template / system prompt)"),
)


@dataclass(frozen=True)
class RunSide:
    """Which run is on one side of the comparison."""

    run_id: str
    label: str
    spec: str
    model_fingerprint: str
    created_at: str
    path: str | None

    @classmethod
    def of(cls, record: RunRecord) -> RunSide:
        model = record.model
        return cls(
            run_id=record.run_id,
            label=model.label or model.spec,
            spec=model.spec,
            model_fingerprint=model.fingerprint,
            created_at=record.created_at,
            path=str(record.path) if record.path is not None else None,
        )


@dataclass(frozen=True)
class ItemChange:
    """One item whose score moved between the runs."""

    doc_id: str
    base_score: float
    candidate_score: float
    target: Any = None
    base_answer: str | None = None
    candidate_answer: str | None = None
    prompt: str | None = None


@dataclass
class TaskComparison:
    task: str
    metric: str
    higher_is_better: bool
    formulation: str
    num_fewshot: int
    role: Role | None  # None when the user did not say which tasks were trained on
    n: int  # paired units (items, or instructions for list scores)
    n_excluded: int  # items left out: failed (no score) in at least one run
    base_score: float  # mean over the paired units
    candidate_score: float
    diff: float  # candidate - base
    ci_low: float
    ci_high: float
    test: TestName
    p_value: float
    mdd: float = math.nan  # minimum detectable difference at this n (80% power at alpha, unadjusted)
    p_adjusted: float = math.nan  # Holm, across the compared tasks
    verdict: Verdict = "no significant change"
    better: list[ItemChange] = field(default_factory=list)  # items the candidate scored higher on
    worse: list[ItemChange] = field(default_factory=list)  # items the candidate scored lower on

    @property
    def binary(self) -> bool:
        return self.test == "mcnemar_exact"


@dataclass
class Comparison:
    base: RunSide
    candidate: RunSide
    alpha: float
    tasks: list[TaskComparison]
    trained_on: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why it was not compared
    notes: list[str] = field(default_factory=list)
    arena: ArenaHeadToHead | None = None  # `compare --arena`: the candidate against the base, judged pairwise

    @property
    def forgetting(self) -> list[TaskComparison]:
        """Significant regressions on tasks the candidate was not trained for."""
        return [t for t in self.tasks if t.verdict == "regressed" and t.role != "trained"]

    def regressions(self, threshold: float | None = None) -> list[TaskComparison]:
        """Significant regressions, optionally only those larger than `threshold` (absolute,
        in the metric's units: 0.02 = two accuracy points)."""
        return [
            t for t in self.tasks
            if t.verdict == "regressed" and (threshold is None or abs(t.diff) > threshold)
        ]

    def counts(self) -> dict[str, int]:
        verdicts: list[str] = ["improved", "regressed", "no significant change"]
        return {v: sum(t.verdict == v for t in self.tasks) for v in verdicts}

    def to_json(self) -> dict[str, Any]:
        return _finite({
            "schema": SCHEMA,
            "base": asdict(self.base),
            "candidate": asdict(self.candidate),
            "alpha": self.alpha,
            "correction": "holm",
            "trained_on": self.trained_on,
            "summary": self.counts(),
            "forgetting": [t.task for t in self.forgetting],
            "tasks": [{**asdict(t), "binary": t.binary} for t in self.tasks],
            "skipped": self.skipped,
            "notes": self.notes,
            "arena": asdict(self.arena) if self.arena is not None else None,
        })


def _finite(value: Any) -> Any:
    """JSON has no nan/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# --- checks ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def explain_fingerprint_mismatch(task: str, base: RunRecord, candidate: RunRecord) -> str:
    """What makes the task's questions differ between the runs, in the user's words."""
    a, b = base.tasks[task], candidate.tasks[task]
    differences = [
        f"{words} {_fmt(getattr(a, key))} vs {_fmt(getattr(b, key))}"
        for key, words in _TASK_FIELDS if getattr(a, key) != getattr(b, key)
    ]
    settings_a, settings_b = base.settings, candidate.settings
    differences += [
        f"{words} {_fmt(getattr(settings_a, key))} vs {_fmt(getattr(settings_b, key))}"
        for key, words in _SETTING_FIELDS if getattr(settings_a, key) != getattr(settings_b, key)
    ]
    if a.data_origin != b.data_origin:
        differences.append(f"data source {a.data_origin} vs {b.data_origin}")
    if not differences:
        differences.append("the task definition, its data items or its few-shot pool (an edited task "
                           "file or another copy of the data), or evalboard's prompting or scoring "
                           "code (another evalboard version)")
    return (
        f"task {task} was not asked the same way in the two runs (task fingerprints differ): "
        f"{'; '.join(differences)}; rerun one model with the other's settings"
    )


def _check_pair(base: RunRecord, candidate: RunRecord) -> None:
    if base.run_id == candidate.run_id:
        raise UserError(f"both sides are the same run ({base.run_id}); compare two different runs, "
                        f"e.g. the base model's and the adapter's")


def _select_tasks(base: RunRecord, candidate: RunRecord,
                  wanted: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    in_base, in_candidate = list(base.tasks), set(candidate.tasks)
    common = [t for t in in_base if t in in_candidate]
    if wanted:
        missing = {
            t: ", ".join(side for side, rec in (("base", base), ("candidate", candidate)) if t not in rec.tasks)
            for t in wanted if t not in common
        }
        if missing:
            detail = "; ".join(f"{t} (not in the {sides} run)" for t, sides in missing.items())
            raise UserError(f"cannot compare {detail}; the runs share: {', '.join(common) or 'no task'}")
        return list(dict.fromkeys(wanted)), {}
    if not common:
        raise UserError(
            f"the runs share no task (base: {', '.join(in_base) or 'none'}; candidate: "
            f"{', '.join(candidate.tasks) or 'none'}); evaluate both models on the same --tasks"
        )
    skipped = {t: "only in the base run" for t in in_base if t not in in_candidate}
    skipped.update({t: "only in the candidate run" for t in candidate.tasks if t not in base.tasks})
    return common, skipped


# --- pairing -----------------------------------------------------------------------------


@dataclass
class _Unit:
    key: str
    base: float
    candidate: float
    base_sample: SampleLine
    candidate_sample: SampleLine


def _by_doc_id(task: str, side: str, samples: list[SampleLine]) -> dict[str, SampleLine]:
    by_id: dict[str, SampleLine] = {}
    for sample in samples:
        key = str(sample.doc_id)
        if key in by_id:
            raise UserError(f"task {task}: the {side} run's samples hold item {key} twice; "
                            f"its samples file is damaged, rerun it")
        by_id[key] = sample
    return by_id


def _scores(sample: SampleLine, metric: str) -> list[float] | float | None:
    if sample.error:
        return None
    value = sample.scores.get(metric)
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return None if value is None else float(value)


def pair_units(task: str, metric: str, base_samples: list[SampleLine],
               candidate_samples: list[SampleLine]) -> tuple[list[_Unit], int]:
    """Per-unit (base, candidate) scores matched by doc_id, in the base run's item order, and how
    many items were left out because one run has no score for them."""
    base_by_id = _by_doc_id(task, "base", base_samples)
    candidate_by_id = _by_doc_id(task, "candidate", candidate_samples)
    if base_by_id.keys() != candidate_by_id.keys():
        shared = len(base_by_id.keys() & candidate_by_id.keys())
        raise UserError(
            f"task {task}: the runs evaluated different items (base {len(base_by_id)}, candidate "
            f"{len(candidate_by_id)}, {shared} in common), e.g. a different --limit; rerun with the "
            f"same --limit so every item can be paired"
        )
    units: list[_Unit] = []
    excluded = 0
    for doc_id, base_sample in base_by_id.items():
        candidate_sample = candidate_by_id[doc_id]
        a, b = _scores(base_sample, metric), _scores(candidate_sample, metric)
        if a is None or b is None:
            excluded += 1
            continue
        if isinstance(a, list) or isinstance(b, list):
            if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)):
                excluded += 1
                continue
            units += [_Unit(f"{doc_id}#{k}", x, y, base_sample, candidate_sample)
                      for k, (x, y) in enumerate(zip(a, b))]
        else:
            units.append(_Unit(doc_id, a, b, base_sample, candidate_sample))
    return units, excluded


# --- what each model answered (for the lists of changed items) ---------------------------


def _chosen_choice(sample: SampleLine, metric: str) -> str | None:
    """For a loglikelihood multiple-choice item: the choice the metric picked (acc: highest
    loglikelihood; acc_norm: highest loglikelihood per character), as recorded when it was scored."""
    pick = choice_pick(sample, metric)
    continuation = sample.requests[pick].continuation if pick is not None else None
    return continuation.strip() if continuation is not None else None


def answer_of(sample: SampleLine, metric: str) -> str | None:
    """A readable answer: the generated text, or the multiple-choice pick."""
    texts = [r.text for r in sample.responses if r.text is not None]
    if texts:
        return texts[0] if len(texts) == 1 else " | ".join(texts)
    return _chosen_choice(sample, metric)


def target_of(sample: SampleLine) -> Any:
    """The expected answer, readable: a multiple-choice gold index becomes its choice's text."""
    target, requests = sample.target, sample.requests
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(requests):
        continuation = requests[target].continuation
        if continuation is not None:
            return str(continuation).strip()
    return target


def _change(unit: _Unit, metric: str) -> ItemChange:
    return ItemChange(
        doc_id=unit.key,
        base_score=unit.base,
        candidate_score=unit.candidate,
        target=target_of(unit.base_sample),
        base_answer=answer_of(unit.base_sample, metric),
        candidate_answer=answer_of(unit.candidate_sample, metric),
        prompt=unit.base_sample.prompt,
    )


# --- the comparison ----------------------------------------------------------------------


def _samples(record: RunRecord, task: str, side: str) -> list[SampleLine]:
    try:
        return record.load_samples(task)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"the {side} run {record.run_id} has no readable samples for task {task} "
                        f"({type(exc).__name__}); its folder is incomplete, rerun it") from exc


def _is_binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def _metric_names(samples: list[SampleLine]) -> list[str]:
    return list(dict.fromkeys(name for s in samples for name in s.scores))


def compare_task(task: str, base: RunRecord, candidate: RunRecord, *, role: Role | None = None,
                 metric: str | None = None, alpha: float = DEFAULT_ALPHA,
                 bootstrap_rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED) -> TaskComparison:
    """One task's paired comparison (p_value unadjusted; `compare_runs` adds Holm and verdicts).
    `metric`: a per-item score other than the primary one (its direction is the task's)."""
    entry_a, entry_b = base.tasks[task], candidate.tasks[task]
    if entry_a.task_fingerprint != entry_b.task_fingerprint:
        raise UserError(explain_fingerprint_mismatch(task, base, candidate))
    base_samples, candidate_samples = _samples(base, task, "base"), _samples(candidate, task, "candidate")
    if metric is not None and metric != entry_a.primary_metric:
        scored = _metric_names([*base_samples, *candidate_samples])
        if metric not in scored:
            raise UserError(f"task {task} has no per-item {metric} scores to compare; its samples score: "
                            f"{', '.join(scored) or 'nothing'}")
    metric = metric or entry_a.primary_metric
    if not any(metric in s.scores for s in [*base_samples, *candidate_samples]):
        raise UserError(f"task {task}: its primary metric {metric} has no per-item scores in the samples, "
                        f"so items cannot be paired")
    units, excluded = pair_units(task, metric, base_samples, candidate_samples)
    if not units:
        raise UserError(f"task {task}: no item has a {metric} score in both runs (each failed in one "
                        f"of them); rerun the failed requests first")
    a = [u.base for u in units]
    b = [u.candidate for u in units]
    if _is_binary(a) and _is_binary(b):
        test: TestName = "mcnemar_exact"
        # McNemar sees only the discordant items (0 -> 1 and 1 -> 0); it is symmetric in the two.
        up = sum(1 for x, y in zip(a, b) if y > x)
        down = sum(1 for x, y in zip(a, b) if y < x)
        p_value = stats.mcnemar_exact(down, up)
        diff, low, high = stats.mcnemar_exact_ci(down, up, len(units), level=1.0 - alpha)
    else:
        test = "paired_bootstrap"
        boot = stats.paired_bootstrap(b, a, rounds=bootstrap_rounds, seed=seed, level=1.0 - alpha)
        diff, low, high, p_value = boot.diff, boot.ci_low, boot.ci_high, boot.p_value
    mdd = stats.minimum_detectable_difference([y - x for x, y in zip(a, b)], binary=test == "mcnemar_exact",
                                              alpha=alpha)
    higher_is_better = entry_a.higher_is_better
    better = [u for u in units if (u.candidate > u.base) == higher_is_better and u.candidate != u.base]
    worse = [u for u in units if (u.candidate < u.base) == higher_is_better and u.candidate != u.base]
    # Largest moves first (all moves are 1 for 0/1 scores: then the run's item order stays).
    better.sort(key=lambda u: -abs(u.candidate - u.base))
    worse.sort(key=lambda u: -abs(u.candidate - u.base))
    return TaskComparison(
        task=task, metric=metric, higher_is_better=higher_is_better,
        formulation=entry_a.formulation, num_fewshot=entry_a.num_fewshot,
        role=role, n=len(units), n_excluded=excluded,
        base_score=sum(a) / len(a), candidate_score=sum(b) / len(b),
        diff=diff, ci_low=low, ci_high=high, test=test, p_value=p_value, mdd=mdd,
        better=[_change(u, metric) for u in better], worse=[_change(u, metric) for u in worse],
    )


def verdict(diff: float, p_adjusted: float, higher_is_better: bool, alpha: float) -> Verdict:
    if not p_adjusted <= alpha or diff == 0:
        return "no significant change"
    return "improved" if (diff > 0) == higher_is_better else "regressed"


def compare_runs(
    base: RunRecord,
    candidate: RunRecord,
    *,
    tasks: Sequence[str] | None = None,
    trained_on: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    metric: str | None = None,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Compare `candidate` against `base` on every task both ran (or on `tasks`). `trained_on`
    names the tasks the candidate was trained for; regressions elsewhere count as forgetting.
    `metric` compares another per-item score than each task's primary one (every compared task
    must have it)."""
    if not 0.0 < alpha < 1.0:
        raise UserError(f"--alpha must be between 0 and 1, not {alpha}")
    _check_pair(base, candidate)
    names, skipped = _select_tasks(base, candidate, tasks)
    unknown = [t for t in trained_on if t not in names]
    if unknown:
        raise UserError(f"--trained-on names task(s) not compared here: {', '.join(unknown)} "
                        f"(compared: {', '.join(names)})")
    trained = set(trained_on)
    results = [
        compare_task(name, base, candidate,
                     role=("trained" if name in trained else "held-out") if trained else None,
                     metric=metric, alpha=alpha, bootstrap_rounds=bootstrap_rounds, seed=seed)
        for name in names
    ]
    for result, adjusted in zip(results, stats.holm_bonferroni([r.p_value for r in results])):
        result.p_adjusted = adjusted
        result.verdict = verdict(result.diff, adjusted, result.higher_is_better, alpha)
    notes = []
    if base.model.fingerprint == candidate.model.fingerprint:
        notes.append("both runs are of the same model (same model fingerprint): any difference is noise "
                     "from sampling or from the runs' settings")
    for result in results:
        if result.n_excluded:
            notes.append(f"{result.task}: {result.n_excluded} item(s) failed in one run and were left out")
    return Comparison(
        base=RunSide.of(base), candidate=RunSide.of(candidate), alpha=alpha, tasks=results,
        trained_on=list(dict.fromkeys(trained_on)), skipped=skipped, notes=notes,
    )
