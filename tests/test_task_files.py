"""Task files: discovery, a user's own task directory, and malformed definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evalboard
from evalboard.errors import UserError
from evalboard.taskdef.registry import discover_tasks, resolve_task_names

TOY_TASK = """
name: toy_colors
description: pick the colour named in the question
mirrors: none
type: multiple_choice
hooks: toy_hooks
data:
  split: test
  fewshot_split: test
prompt:
  text: "Which colour is {{ question }}?\\nAnswer:"
num_fewshot: 0
primary_metric: acc
"""

TOY_HOOKS = """
def to_docs(rows, source_format):
    return [{"id": r["id"], "question": r["q"], "choices": r["choices"], "answer": r["answer"]} for r in rows]
"""


def write_toy_task(directory: Path) -> Path:
    (directory / "toy_colors.yaml").write_text(TOY_TASK)
    (directory / "toy_hooks.py").write_text(TOY_HOOKS)
    data = directory / "data" / "toy_colors"
    data.mkdir(parents=True)
    rows = [{"id": f"t{i}", "q": f"item {i}", "choices": ["red", "green", "blue"], "answer": i % 3} for i in range(9)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def test_the_builtin_tasks_are_discovered() -> None:
    specs = discover_tasks()
    assert {"arc_easy", "arc_challenge", "hellaswag", "mmlu"} <= set(specs)
    assert all(spec.mirrors for spec in specs.values())


def test_a_users_task_directory_adds_a_task_without_touching_the_project(tiny_model: Path, tmp_path: Path) -> None:
    write_toy_task(tmp_path)
    record = evalboard.evaluate(f"hf:{tiny_model}", "toy_colors", include_paths=[tmp_path],
                                data_dir=tmp_path / "data", output_dir=None, num_fewshot=2)
    assert record.tasks["toy_colors"].n_items == 9
    assert str(record.samples["toy_colors"][0].prompt).count("Which colour") == 3  # 2 shots + question
    assert "toy_colors" not in discover_tasks()


@pytest.mark.parametrize(
    "content,message",
    [
        ("name: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: broken\ntype: multiple_choice\nprompt: {text: x}\n", "missing the required key 'data'"),
        ("name: b\ntype: essay\ndata: {split: test}\nprompt: {text: x}\n", "type must be"),
        ("name: b\ntype: generate\ndata: {split: test}\nprompt: {text: x, colour: red}\n", "malformed"),
    ],
)
def test_malformed_task_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(UserError, match=message) as error:
        discover_tasks([tmp_path])
    assert "\n" not in str(error.value) and "bad.yaml" in str(error.value)


def test_unknown_tasks_are_listed() -> None:
    with pytest.raises(UserError, match="unknown task.*nope.*evalboard tasks"):
        resolve_task_names(["arc_easy", "nope"], discover_tasks())


def test_every_adapter_is_found_even_after_one_was_imported_directly() -> None:
    import subprocess
    import sys

    code = ("import evalboard.models.adapters.anthropic_api\n"
            "from evalboard.models.adapters.base import known_schemes\n"
            "print(','.join(known_schemes()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert {"hf", "vllm", "openai", "anthropic", "openai-compatible", "chance"} <= set(out.strip().split(","))
