"""The Open LLM Leaderboard v1 few-shot variants against lm-eval itself: its default sampler
(one generator seeded 1234, drawn from in document order) picks the same examples, so the same
prompts, loglikelihoods (1e-4) and per-item results come out. ARC-Challenge 25-shot draws from
../shared/data's copy of ARC's train split (skipped when absent). HellaSwag's and Winogrande's
train splits are on no package and not on these machines: their tests stand 200 validation items
in for train (clearly not the real pool) to hold the sampler and the few-shot layout to lm-eval's;
the real runs need the Hub or a local copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from evalboard.errors import UserError
from evalboard.taskdef.data import load_split
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks
from lm_eval_reference import _arc_row, _write_jsonl
from open_llm_reference import SHARED_DATA, arc_hub_rows, write_with_train
from test_open_llm_v2_parity import _check

ARC_TRAIN = SHARED_DATA / "arc" / "ARC-Challenge" / "ARC-Challenge-Train.jsonl"
LIMIT = 3


def _data_dir(tmp_path: Path, task: str, train_rows: list[dict[str, Any]]) -> Path:
    (tmp_path / "data" / task).mkdir(parents=True)
    _write_jsonl(tmp_path / "data" / task / "train.jsonl", train_rows)
    return tmp_path / "data"


def _validation_rows(task: str) -> list[dict[str, Any]]:
    spec = discover_tasks()[task]
    return load_split(task, spec.data, "validation", "offline", None).rows


@pytest.mark.skipif(not ARC_TRAIN.is_file(), reason=f"ARC's train split is not at {ARC_TRAIN} (../shared/data is absent)")
def test_arc_challenge_25_shot_matches_lm_eval(long_tiny_model: Path, tmp_path: Path) -> None:
    train = arc_hub_rows(ARC_TRAIN)
    data_dir = _data_dir(tmp_path, "arc_challenge_25shot", train)
    docs = prepare_task(discover_tasks()["arc_challenge_25shot"], TaskOptions(limit=LIMIT, data_dir=data_dir)).docs
    name = write_with_train(tmp_path, "ref_arc_c25", "arc/arc_challenge.yaml", "test", [_arc_row(d) for d in docs], train)
    _check({"arc_challenge_25shot": name}, long_tiny_model, tmp_path, data_dir, LIMIT, num_fewshot=25)


def test_hellaswag_10_shot_sampler_and_layout_match_lm_eval(long_tiny_model: Path, tmp_path: Path) -> None:
    rows = _validation_rows("hellaswag_10shot")
    stand_in = rows[100:300]  # validation items standing in for train (not available here)
    data_dir = _data_dir(tmp_path, "hellaswag_10shot", stand_in)
    name = write_with_train(tmp_path, "ref_hs10", "hellaswag/hellaswag.yaml", "validation", rows[:LIMIT], stand_in)
    _check({"hellaswag_10shot": name}, long_tiny_model, tmp_path, data_dir, LIMIT, num_fewshot=10)


def test_winogrande_5_shot_sampler_and_layout_match_lm_eval(long_tiny_model: Path, tmp_path: Path) -> None:
    keep = ("sentence", "option1", "option2", "answer")
    rows = [{k: r[k] for k in keep} for r in _validation_rows("winogrande_5shot")]
    stand_in = rows[100:300]
    data_dir = _data_dir(tmp_path, "winogrande_5shot", stand_in)
    name = write_with_train(tmp_path, "ref_wg5", "winogrande/default.yaml", "validation", rows[:LIMIT], stand_in)
    _check({"winogrande_5shot": name}, long_tiny_model, tmp_path, data_dir, LIMIT, num_fewshot=5)


@pytest.mark.parametrize("task", ["hellaswag_10shot", "winogrande_5shot"])
def test_without_train_the_v1_variants_say_where_it_comes_from(task: str, tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        prepare_task(discover_tasks()[task], TaskOptions(limit=2, data_dir=tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "'train' split" in message and f"DIR/{task}/train.jsonl" in message


def test_lm_eval_sampler_examples_are_its_draws_and_do_not_depend_on_limit() -> None:
    import random

    from evalboard.taskdef.fewshot import SequentialDraws, select_fewshot

    spec = discover_tasks()["winogrande_5shot"]
    assert spec.fewshot.sampler == "lm_eval_random" and spec.fewshot.draw_one_more
    pool = [{"id": f"p{i}", "n": i} for i in range(50)]
    docs = [{"id": str(i)} for i in range(20)]
    draws = SequentialDraws(1234)
    whole = [select_fewshot(d, pool, 5, spec.fewshot, 1234, draws=draws, position=i) for i, d in enumerate(docs)]
    rng = random.Random(1234)  # lm-eval's ContextSampler: sample(k + 1) per document, in order, first k kept
    assert whole == [rng.sample(pool, 6)[:5] for _ in docs]
    late = select_fewshot(docs[12], pool, 5, spec.fewshot, 1234, draws=SequentialDraws(1234), position=12)
    assert late == whole[12]  # replayed: a run of documents 12.. asks what the whole split does
