"""The generative catalogue as tasks of the engine: a generation cut off by max_new_tokens is
scored as it stands (as lm-eval scores it) and its sample line says so; the tasks' data and
few-shot sources fail with one line where they are not available."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pytest
from evalboard.errors import UserError
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks


def test_a_cut_off_chain_of_thought_is_scored_as_it_stands_and_logged(tiny_model: Path) -> None:
    record = evalboard.evaluate(f"hf:{tiny_model}", "leaderboard_math_hard", limit=2, num_fewshot=0,
                                max_new_tokens=6, output_dir=None)
    samples = record.samples["leaderboard_math_hard"]
    assert len(samples) == 2 * 7  # a group (as lm-eval's): the limit is per subject
    for sample in samples:
        (response,) = sample.responses
        assert response.hit_max_new_tokens is True
        assert sample.scores["exact_match_original"] == 0.0  # no "Final Answer" line: lm-eval's 0
        assert sample.scores["extracted_answer"] == "[invalidanswer]"
    metrics = record.tasks["leaderboard_math_hard"].metrics
    assert {"exact_match", "exact_match_original"} <= set(metrics)
    assert record.tasks["leaderboard_math_hard"].primary_metric == "exact_match"


def test_drop_few_shot_examples_need_the_train_split() -> None:
    with pytest.raises(UserError, match="--num-fewshot 0"):
        prepare_task(discover_tasks()["drop_1k"], TaskOptions(limit=2, data_source="offline"))


def test_bbh_items_need_the_hub_or_a_local_copy() -> None:
    with pytest.raises(UserError, match="bbh_cot_fewshot"):
        prepare_task(discover_tasks()["bbh_cot_fewshot"], TaskOptions(limit=2, data_source="offline"))
