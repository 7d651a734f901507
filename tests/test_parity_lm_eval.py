"""evalboard and lm-eval (hf backend) give the same per-sample loglikelihoods and accuracies on
the same items and model: ARC-Easy and HellaSwag 0-shot, MMLU 5-shot from dev."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pytest
from evalboard.stats import mean_stderr
from evalboard.taskdef.data import load_split
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks
from lm_eval_reference import (
    per_sample_loglikelihoods,
    run_lm_eval,
    write_arc,
    write_group,
    write_hellaswag,
    write_mmlu_subject,
)

TOLERANCE = 1e-4
# The tiny random model's scaled output layer gives loglikelihoods of hundreds of nats, where the
# float32 rounding of a different (equally exact) summation order alone reaches ~1e-4; for those,
# 1e-6 relative. Real models' values (SmolLM2, below) are held to 1e-4 absolute.
RELATIVE = 1e-6


def _ours(model: Path, task: str, limit: int | float, tmp_path: Path, **kwargs):
    record = evaluate_task(model, task, limit, tmp_path, **kwargs)
    samples = record.samples[task]
    return record, {s.index: [r.logprob for r in s.responses] for s in samples}


def evaluate_task(model: Path, task: str, limit: int | float, tmp_path: Path, **kwargs):
    return evalboard.evaluate(f"hf:{model}", [task], limit=limit, output_dir=None, batch_size=4, **kwargs)


def _assert_same(ours: dict[int, list[float]], reference: dict[int, list[float]]) -> None:
    assert sorted(ours) == sorted(reference)
    for doc_id, values in reference.items():
        assert ours[doc_id] == pytest.approx(values, abs=TOLERANCE, rel=RELATIVE), f"doc {doc_id}"


@pytest.mark.parametrize("model_fixture", ["tiny_model", "tiny_model_no_bos"])
def test_arc_easy_matches_lm_eval(model_fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model = request.getfixturevalue(model_fixture)
    docs = prepare_task(discover_tasks()["arc_easy"], TaskOptions(limit=25)).docs
    reference = run_lm_eval(model, tmp_path, [write_arc(tmp_path, docs)])
    record, ours = _ours(model, "arc_easy", 25, tmp_path)
    _assert_same(ours, per_sample_loglikelihoods(reference, "ref_arc_easy"))
    ref_metrics = reference["results"]["ref_arc_easy"]
    assert record.metric("arc_easy", "acc") == pytest.approx(ref_metrics["acc,none"])
    assert record.metric("arc_easy", "acc_norm") == pytest.approx(ref_metrics["acc_norm,none"])
    assert record.tasks["arc_easy"].metrics["acc"].stderr == pytest.approx(ref_metrics["acc_stderr,none"])


def test_hellaswag_preprocessing_and_scores_match_lm_eval(tiny_model: Path, tmp_path: Path) -> None:
    spec = discover_tasks()["hellaswag"]
    raw = load_split("hellaswag", spec.data, "validation", "offline", None).rows[:20]
    reference = run_lm_eval(tiny_model, tmp_path, [write_hellaswag(tmp_path, raw)])
    ref_samples = reference["samples"]["ref_hellaswag"]
    docs = prepare_task(spec, TaskOptions(limit=20)).docs
    for sample in ref_samples:  # lm-eval's preprocessing gives the same query and endings
        doc = docs[sample["doc_id"]]
        assert sample["doc"]["query"] == doc["query"]
        assert sample["doc"]["choices"] == doc["choices"]
    record, ours = _ours(tiny_model, "hellaswag", 20, tmp_path)
    _assert_same(ours, per_sample_loglikelihoods(reference, "ref_hellaswag"))
    ref_metrics = reference["results"]["ref_hellaswag"]
    assert record.metric("hellaswag", "acc") == pytest.approx(ref_metrics["acc,none"])
    assert record.metric("hellaswag", "acc_norm") == pytest.approx(ref_metrics["acc_norm,none"])


def test_mmlu_five_shot_matches_lm_eval(tiny_model: Path, tmp_path: Path) -> None:
    """`--limit 0.015` takes 1.5% of each subject (2 to 24 items), as lm-eval's does of each subtask:
    57 per-subject few-shot blocks, the subtask rows and lm-eval's group figures (size-weighted mean,
    pooled stderr; at least two items per subject, or lm-eval's stderr is N/A)."""
    from lm_eval.api.metrics import unweighted_mean_stderr

    spec = discover_tasks()["mmlu"]
    task = prepare_task(spec, TaskOptions(limit=0.015))
    subjects = list(dict.fromkeys(d["subject"] for d in task.docs))
    assert len(subjects) == 57
    names = []
    for subject in subjects:
        test_docs = [d for d in task.docs if d["subject"] == subject]
        dev_docs = [d for d in task.fewshot_pool if d["subject"] == subject]
        names.append(write_mmlu_subject(tmp_path, subject, test_docs, dev_docs))
    reference = run_lm_eval(tiny_model, tmp_path, [write_group(tmp_path, "ref_mmlu", names)], num_fewshot=5)
    record, ours = _ours(tiny_model, "mmlu", 0.015, tmp_path)
    offset = 0
    for subject, name in zip(subjects, names):
        ref = per_sample_loglikelihoods(reference, name)
        for doc_id, values in ref.items():
            assert ours[offset + doc_id] == pytest.approx(values, abs=TOLERANCE, rel=RELATIVE)
        offset += len(ref)
    entry, results = record.tasks["mmlu"], reference["results"]
    assert entry.subtasks is not None
    for subject, name in zip(subjects, names):  # lm-eval's per-subtask rows
        row = entry.subtasks[subject]["acc"]
        assert row.value == pytest.approx(results[name]["acc,none"])
        assert row.stderr == pytest.approx(results[name]["acc_stderr,none"])
        assert row.n == len(per_sample_loglikelihoods(reference, name))
    assert sorted(entry.subtasks) == sorted(subjects) and entry.groups == 57
    group = entry.metrics["acc"]  # lm-eval's group row
    assert group.value == pytest.approx(results["ref_mmlu"]["acc,none"])
    assert group.stderr is not None and group.stderr == pytest.approx(results["ref_mmlu"]["acc_stderr,none"], rel=1e-12)
    plain = mean_stderr([s.scores["acc"] for s in record.samples["mmlu"]])
    assert abs(group.stderr - plain) > 1e-6  # the pooled stderr is not the plain one
    per_subject = [results[n]["acc,none"] for n in names]
    macro = entry.metrics["acc_macro"]
    assert macro.value == pytest.approx(sum(per_subject) / len(per_subject))
    assert macro.stderr == pytest.approx(unweighted_mean_stderr([results[n]["acc_stderr,none"] for n in names]))


@pytest.mark.slow
def test_real_smollm2_arc_challenge_matches_lm_eval(smollm2_dir: Path, tmp_path: Path) -> None:
    docs = prepare_task(discover_tasks()["arc_challenge"], TaskOptions(limit=8)).docs
    reference = run_lm_eval(smollm2_dir, tmp_path, [write_arc(tmp_path, docs, "ref_arc_challenge")])
    record, ours = _ours(smollm2_dir, "arc_challenge", 8, tmp_path)
    reference_values = per_sample_loglikelihoods(reference, "ref_arc_challenge")
    for doc_id, values in reference_values.items():
        assert ours[doc_id] == pytest.approx(values, abs=TOLERANCE), f"doc {doc_id}"
    assert record.metric("arc_challenge", "acc_norm") == pytest.approx(
        reference["results"]["ref_arc_challenge"]["acc_norm,none"])
