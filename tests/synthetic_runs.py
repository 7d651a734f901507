"""Synthetic run folders in the real store format, for scale tests, benchmarks and demos.

Scores come from a simple item-response model (each model has a skill, each item a difficulty),
so ratings and averages behave like real ones. Every folder is a complete run in the current
schema, built from the record models and written by the store: run.json plus samples/<task>.jsonl
lines shaped like the evaluator's (prompt, requests, responses with usage, scores). Nothing here is
used when building a real leaderboard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from evalboard.engine.metrics import metric_value
from evalboard.fingerprint import stable_hash
from evalboard.records.run_record import (
    HarnessInfo,
    MetricResult,
    ModelIdentity,
    RunRecord,
    RunSettings,
    RunUsage,
    SampleLine,
    TaskResult,
)
from evalboard.records.store import save_run

# Full test-set sizes of the six headline tasks.
FULL_TASKS: dict[str, int] = {
    "arc_easy": 2376, "arc_challenge": 1172, "hellaswag": 10042, "mmlu": 14042, "gsm8k": 1319, "humaneval": 164,
}
_GENERATIVE = {"gsm8k": "exact_match", "humaneval": "pass@1"}
_MC_CHOICES = {"hellaswag": 4, "arc_easy": 4, "arc_challenge": 4, "mmlu": 4}


@dataclass
class SyntheticModel:
    label: str
    skill: float
    open_weights: bool | None = True
    parameters: int | None = None
    cost_per_item_usd: float | None = 0.0  # None: unpriced
    latency_s: float | None = None
    tokens_per_s: float | None = None
    weights_version: str = "v1"
    spec: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _primary(task: str) -> str:
    return _GENERATIVE.get(task, "acc_norm")


def _task_fingerprint(task: str, version: str = "1") -> str:
    return stable_hash({"synthetic-task": task, "version": version})


def _scores(model: SyntheticModel, task: str, n: int, seed: int) -> np.ndarray:
    items = np.random.default_rng([seed, sum(map(ord, task))]).normal(0.0, 1.2, n)
    noise = np.random.default_rng([seed, sum(map(ord, task)), sum(map(ord, model.label)) % 100003])
    p = 1.0 / (1.0 + np.exp(-(model.skill - items)))
    return (noise.random(n) < p).astype(np.float64)


def _sample_lines(task: str, correct: np.ndarray, model: SyntheticModel) -> list[SampleLine]:
    primary = _primary(task)
    cost = model.cost_per_item_usd or 0.0
    lines = []
    if task in _GENERATIVE:
        for k, ok in enumerate(correct):
            answer = f"Let me think step by step about problem {k}. The answer is {42 if ok else 41}."
            lines.append(SampleLine(
                index=k, doc_id=f"{task}-{k:05d}",
                prompt=f"Question {k}: a synthetic {task} problem whose answer is 42.\nAnswer:",
                target="42",
                requests=[{"kind": "generate", "params": {"max_new_tokens": 256, "temperature": 0.0}}],
                responses=[{"text": answer, "usage": {"input_tokens": 60, "output_tokens": 24,
                                                      "latency_s": model.latency_s or 0.0, "cost_usd": cost}}],
                scores={primary: float(ok)},
            ))
        return lines
    choices = _MC_CHOICES.get(task, 4)
    for k, ok in enumerate(correct):
        gold = k % choices
        picked = gold if ok else (gold + 1) % choices
        logprobs = [-12.0 - ((c - picked) % choices) for c in range(choices)]
        lines.append(SampleLine(
            index=k, doc_id=f"{task}-{k:05d}",
            prompt=f"Question: synthetic {task} item {k} asks which of the following is true.\nAnswer:",
            target=gold,
            requests=[{"continuation": f" choice {c} of item {k}", "kind": "loglikelihood"} for c in range(choices)],
            responses=[{"logprob": lp, "is_greedy": False,
                        "usage": {"input_tokens": 40, "output_tokens": 0, "cost_usd": cost / choices}}
                       for lp in logprobs],
            scores={"acc": float(ok), primary: float(ok)},
        ))
    return lines


def _metric(values: np.ndarray) -> MetricResult:
    return MetricResult(**metric_value(values).to_json())  # exactly as the evaluator records a metric


def _run_id(label: str, created_at: str, suffix: str = "") -> str:
    stamp = created_at[:19].replace("-", "").replace(":", "").replace("T", "-")
    return f"{stamp}-syn-{stable_hash([label, created_at, suffix])[:10]}"


def write_run(
    directory: Path,
    model: SyntheticModel,
    tasks: dict[str, int],
    created_at: str,
    *,
    seed: int = 0,
    task_version: str = "1",
    run_suffix: str = "",
    edit: Callable[[str, SampleLine], None] | None = None,
) -> Path:
    """One run of `model` on `tasks` ({name: item count}); returns its folder. `edit(task, line)`
    may change sample lines before they are saved (e.g. to plant hostile text)."""
    fingerprint = stable_hash({"synthetic-model": model.label, "weights": model.weights_version})
    run_id = _run_id(model.label, created_at, run_suffix)
    entries, samples, total_items = {}, {}, 0
    for task, n in sorted(tasks.items()):
        correct = _scores(model, task, n, seed)
        samples[task] = _sample_lines(task, correct, model)
        for line in samples[task] if edit else ():
            edit(task, line)
        primary = _primary(task)
        metrics = {primary: _metric(correct)}
        if task not in _GENERATIVE:
            metrics["acc"] = _metric(correct)
        entries[task] = TaskResult(
            task_fingerprint=_task_fingerprint(task, task_version),
            items_hash=stable_hash([n]), mirrors=f"lm-eval {task}",
            formulation="generate" if task in _GENERATIVE else "loglikelihood", num_fewshot=0,
            primary_metric=primary, higher_is_better=True, metrics=metrics, n_items=n,
            failed_items=0, data_origin="synthetic", generation=None, samples_per_item=1,
            samples_file=f"samples/{task}.jsonl",
        )
        total_items += n
    cost = None if model.cost_per_item_usd is None else round(model.cost_per_item_usd * total_items, 6)
    info: dict[str, Any] = {"open_weights": model.open_weights}
    if model.parameters:
        info["parameters"] = model.parameters
    record = RunRecord(
        run_id=run_id, created_at=created_at,
        harness=HarnessInfo(name="evalboard", version="synthetic", git_commit=None),
        model=ModelIdentity(spec=model.spec or f"synthetic:{model.label}", label=model.label, fingerprint=fingerprint,
                            fingerprint_parts={"weights": model.weights_version}, info=info),
        settings=RunSettings(**{"seed": seed, "limit": None, **model.settings}),
        tasks=entries,
        usage=RunUsage(requests=total_items, cost_usd=cost, latency_mean_s=model.latency_s,
                       output_tokens=24 * total_items if model.tokens_per_s else 0,
                       output_tokens_per_s=model.tokens_per_s),
        wall_time_s=1.0,
    ).with_samples(samples)
    return save_run(Path(directory), record).path  # type: ignore[return-value]


def write_scored_run(directory: Path, label: str, task: str, metric: str, scores: list[float], created_at: str,
                     *, higher_is_better: bool = True, formulation: str = "generate", num_fewshot: int = 0) -> Path:
    """A run of one task whose items score `scores` on `metric` (any name, either direction): for
    tests of tasks and metrics the board has never seen."""
    lines = [SampleLine(index=k, doc_id=f"{task}-{k:05d}", scores={metric: v}) for k, v in enumerate(scores)]
    entry = TaskResult(
        task_fingerprint=_task_fingerprint(task), items_hash=stable_hash([len(scores)]), formulation=formulation,
        num_fewshot=num_fewshot, primary_metric=metric, higher_is_better=higher_is_better,
        metrics={metric: _metric(np.asarray(scores, dtype=np.float64))}, n_items=len(scores),
        data_origin="synthetic", samples_file=f"samples/{task}.jsonl",
    )
    record = RunRecord(
        run_id=_run_id(label, created_at), created_at=created_at,
        harness=HarnessInfo(name="evalboard", version="synthetic"),
        model=ModelIdentity(spec=f"synthetic:{label}", label=label, fingerprint=stable_hash({"synthetic-model": label})),
        tasks={task: entry},
    ).with_samples({task: lines})
    return save_run(Path(directory), record).path  # type: ignore[return-value]


def model_zoo(count: int, seed: int = 0) -> list[SyntheticModel]:
    """`count` models: about 70% open (with sizes), 30% closed API models (priced, with latency)."""
    rng = np.random.default_rng(seed)
    models = []
    for k in range(count):
        closed = k % 10 >= 7
        skill = float(rng.normal(0.0, 0.8))
        if closed:
            models.append(SyntheticModel(
                label=f"api-model-{k:03d}", skill=skill + 0.5, open_weights=False,
                cost_per_item_usd=float(10 ** rng.uniform(-5, -2.5)), latency_s=float(rng.uniform(0.3, 3.0)),
                tokens_per_s=float(rng.uniform(30, 150)),
            ))
        else:
            params = int(10 ** rng.uniform(8, 11))
            models.append(SyntheticModel(label=f"open-model-{k:03d}-{params // 10**6}m", skill=skill,
                                         parameters=params, cost_per_item_usd=0.0))
    return models


def write_store(directory: Path, models: list[SyntheticModel], tasks: dict[str, int] = FULL_TASKS,
                seed: int = 0) -> list[Path]:
    """One run per model, all on `tasks`, with distinct creation times."""
    return [
        write_run(directory, model, tasks, f"2025-01-01T{k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d}+00:00", seed=seed)
        for k, model in enumerate(models)
    ]
