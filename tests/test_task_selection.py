"""Choosing tasks: groups (MMLU and its 57 `mmlu_<subject>` members), globs, comma- or
space-separated names, and a limit that applies per group member (as lm-eval's does)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import evalboard
import pytest
from evalboard.cli import main
from evalboard.errors import UserError
from evalboard.requests import Capabilities
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks, resolve_task_names

SUBJECTS = 57


@pytest.fixture(scope="module")
def specs():
    return discover_tasks()


def test_each_mmlu_subject_is_a_task_of_the_mmlu_group(specs) -> None:
    members = [name for name, spec in specs.items() if spec.subtask_of == "mmlu"]
    assert len(members) == SUBJECTS and "mmlu_abstract_algebra" in members and "mmlu_world_religions" in members
    anatomy = prepare_task(specs["mmlu_anatomy"], TaskOptions())
    assert len(anatomy.docs) == 135 and {d["subject"] for d in anatomy.docs} == {"anatomy"}
    assert [d["subject"] for d in anatomy.fewshot_pool] == ["anatomy"] * 5
    assert specs["mmlu_anatomy"].mirrors == "lm-eval mmlu_anatomy"
    # the member asks exactly what the group asks of the same item
    group = prepare_task(specs["mmlu"], TaskOptions())
    assert [d for d in group.docs if d["subject"] == "anatomy"] == anatomy.docs
    can = Capabilities(loglikelihood=True, generate=True, chat=False)
    choose_formulation(group, can, "m")
    choose_formulation(anatomy, can, "m")
    for doc in anatomy.docs[:3]:
        assert group.requests(doc) == anatomy.requests(doc)


def test_tasks_take_names_groups_globs_commas_and_spaces(specs) -> None:
    assert resolve_task_names("mmlu_a* arc_easy,mmlu", specs) == [
        "mmlu_abstract_algebra", "mmlu_anatomy", "mmlu_astronomy", "arc_easy", "mmlu"]
    assert len(resolve_task_names(["mmlu_*"], specs)) == SUBJECTS
    assert resolve_task_names(["arc_easy", "arc_easy,hellaswag"], specs) == ["arc_easy", "hellaswag"]
    with pytest.raises(UserError, match=r"mmlu_zz\* \(matches no task\).*mmlu_\*"):
        resolve_task_names("mmlu_zz*", specs)


def test_a_groups_limit_is_per_member_and_a_fraction_is_of_each(specs) -> None:
    whole = Counter(d["subject"] for d in prepare_task(specs["mmlu"], TaskOptions()).docs)
    two = Counter(d["subject"] for d in prepare_task(specs["mmlu"], TaskOptions(limit=2)).docs)
    assert two == {subject: 2 for subject in whole}
    share = Counter(d["subject"] for d in prepare_task(specs["mmlu"], TaskOptions(limit=0.01)).docs)
    assert share == {subject: math.ceil(n * 0.01) for subject, n in whole.items()}  # lm-eval rounds up
    assert len(prepare_task(specs["arc_easy"], TaskOptions(limit=0.01)).docs) == math.ceil(2376 * 0.01)


def test_the_group_scores_its_members_items_pooled(tmp_path: Path) -> None:
    group = evalboard.evaluate("chance:0", "mmlu", limit=1, output_dir=None)
    assert group.tasks["mmlu"].n_items == SUBJECTS and group.tasks["mmlu"].groups == SUBJECTS
    members = evalboard.evaluate("chance:0", "mmlu_*", limit=1, output_dir=None)
    assert len(members.tasks) == SUBJECTS
    pooled = sum(members.metric(name, "acc") for name in members.tasks) / SUBJECTS
    assert group.metric("mmlu", "acc") == pytest.approx(pooled)
    assert group.metric("mmlu", "acc_macro") == pytest.approx(pooled)
    by_doc = {s.doc_id: s.scores for name in members.tasks for s in members.samples[name]}
    assert {s.doc_id: s.scores for s in group.samples["mmlu"]} == by_doc


@pytest.mark.parametrize("flags,fragment", [
    (["--limit", "1.5"], "--limit: must be a positive whole number or a fraction between 0 and 1"),
    (["--batch_size", "zero"], "must be a positive whole number or auto"),
])
def test_bad_limits_and_batch_sizes_are_one_line_errors(flags: list[str], fragment: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--model", "chance:0", "--tasks", "arc_easy", *flags])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert fragment in line


def test_the_main_job_samples_every_mmlu_subject() -> None:
    """quickstart gives a group its own limit, per member: its MMLU column is 2 items of each subject;
    a generative group (MATH) also gets the generation cap."""
    from evalboard.cli import build_parser
    from evalboard.cli.commands.quickstart import _task_groups

    assert _task_groups("arc_easy,mmlu gsm8k_cot leaderboard_math_hard") == (
        ["arc_easy"], ["mmlu"], ["leaderboard_math_hard"], ["gsm8k_cot"])
    assert build_parser().parse_args(["quickstart"]).group_limit == 2
