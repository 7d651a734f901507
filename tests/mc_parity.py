"""Multiple-choice parity with lm-eval, item by item: the shared check of the catalogue and Open LLM
Leaderboard tests. lm-eval runs its own task files (redirected to the same items) and evalboard its
tasks; every item must ask the same requests, get the same loglikelihoods (within `tolerance`) and
the same per-item and aggregate accuracies and stderr (within `score_tolerance`: 0/1 accuracies are
equal, TruthfulQA MC2's probability mass moves with the loglikelihoods' last digits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evalboard
import pytest
from evalboard.records.run_record import RunRecord
from evalboard.requests import Capabilities
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from lm_eval_reference import per_sample_loglikelihoods, run_lm_eval

TOLERANCE, RELATIVE = 1e-4, 1e-6  # as tests/test_parity_lm_eval.py (the tiny model's huge values)
ACCURACIES = ("acc", "acc_norm")


def prepared_for_parity(task: str, data_dir: Path | None, limit: int | None) -> PreparedTask:
    """The task as a loglikelihood model is asked it."""
    prepared = prepare_task(discover_tasks()[task], TaskOptions(limit=limit, data_dir=data_dir))
    choose_formulation(prepared, Capabilities(loglikelihood=True, generate=True, chat=False), "tiny")
    return prepared


def lm_eval_requests(sample: dict[str, Any]) -> list[tuple[str, str]]:
    """(context, continuation) of each request in an lm-eval per-sample log line."""
    arguments = sample["arguments"]
    if isinstance(arguments, dict):  # {"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...}
        arguments = [(a["arg_0"], a["arg_1"]) for a in arguments.values()]
    return [(str(context), str(continuation)) for context, continuation in arguments]


def run_both(names: dict[str, str], model: Path, tmp_path: Path, data_dir: Path | None, limit: int,
             num_fewshot: int | None = None) -> tuple[dict[str, Any], RunRecord]:
    """lm-eval on its tasks `names` (ours -> its) and evalboard on ours, the same items."""
    reference = run_lm_eval(model, tmp_path, list(names.values()), num_fewshot=num_fewshot)
    record = evalboard.evaluate(f"hf:{model}", list(names), limit=limit, output_dir=None, batch_size=4,
                                data_dir=data_dir)
    return reference, record


def assert_items_match(reference: dict[str, Any], record: RunRecord, names: dict[str, str],
                       prepared: dict[str, PreparedTask], relative: float = RELATIVE,
                       score_tolerance: float = 0.0) -> dict[str, float]:
    """Every item and aggregate as above; returns each task's largest |Δ loglikelihood|."""
    worst: dict[str, float] = {}
    for task, name in names.items():
        ref_samples = {s["doc_id"]: s for s in reference["samples"][name]}
        ours = {s.index: s for s in record.samples[task]}
        assert sorted(ours) == sorted(ref_samples), task
        theirs = per_sample_loglikelihoods(reference, name)
        worst[task] = 0.0
        for doc_id, sample in ours.items():
            asked = [(r.context, r.continuation) for r in prepared[task].requests(prepared[task].docs[doc_id])]
            assert asked == lm_eval_requests(ref_samples[doc_id]), f"{task} doc {doc_id}"
            values = [r.logprob for r in sample.responses]
            assert values == pytest.approx(theirs[doc_id], abs=TOLERANCE, rel=relative), f"{task} doc {doc_id}"
            worst[task] = max(worst[task], *(abs(a - b) for a, b in zip(values, theirs[doc_id])))
            for metric in ACCURACIES:
                if metric in ref_samples[doc_id]:
                    expected = ref_samples[doc_id][metric]
                    assert sample.scores[metric] == pytest.approx(expected, abs=score_tolerance), \
                        f"{task} doc {doc_id} {metric}"
        for metric in ACCURACIES:
            if f"{metric},none" in reference["results"][name]:
                expected = reference["results"][name][f"{metric},none"]
                assert record.metric(task, metric) == pytest.approx(expected, abs=max(score_tolerance, 1e-9)), \
                    (task, metric)
        stderr = reference["results"][name].get("acc_stderr,none")
        if isinstance(stderr, float):  # lm-eval says "N/A" for one item
            ours_stderr = record.tasks[task].metrics["acc"].stderr
            assert ours_stderr == pytest.approx(stderr, abs=max(score_tolerance, 1e-9)), task
    print("max |dll| vs lm-eval:", worst)
    return worst
