"""Task files: discovery, a user's own task directory, and malformed definitions."""

from __future__ import annotations

import json
from pathlib import Path

import evalboard
import pytest
import yaml
from evalboard.errors import UserError
from evalboard.requests import Capabilities
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation
from evalboard.taskdef.registry import discover_tasks, resolve_task_names
from evalboard.taskdef.spec import parse_task_spec

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


_BASE = "name: b\ntype: generate_until\ndata: {split: test}\nmetrics: [{metric: exact_match}]\n"


@pytest.mark.parametrize(
    "content,message",
    [
        ("name: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: broken\ntype: multiple_choice\nprompt: {text: x}\n", "the required key `data` is missing"),
        ("name: b\ntype: essay\ndata: {split: test}\nprompt: {text: x}\n", "unknown task type 'essay'; allowed: .*multiple_choice"),
        (_BASE + "prompt: {text: x, colour: red}\n", "unknown key `prompt.colour`; allowed here: text, description"),
        (_BASE + "prompt: {text: x}\nshots: 3\n", "unknown key `shots`; did you mean `fewshot`\\? allowed here: name, description"),
        # no coercion: a string is not a list, "false" is not a boolean, 2.9 is not a count
        (_BASE + "prompt: {text: x}\ngeneration: {stop: 'Q:'}\n", "`generation.stop`: Input should be a valid tuple"),
        (_BASE + "prompt: {text: x}\nchat: 'false'\n", "`chat`: Input should be a valid boolean"),
        (_BASE + "prompt: {text: x}\nnum_fewshot: 2.9\n", "`num_fewshot`: Input should be a valid integer"),
        (_BASE + "prompt: {text: x}\nnum_fewshot: -1\n", "`num_fewshot`: Input should be greater than or equal to 0"),
        (_BASE + "prompt: {text: x}\ndata: {split: test, offline: {package: p, module: m, splits: {test: {path: x, format: csv2}}}}\n",
         "`data.offline.splits.test.format`: Input should be"),
        ("include: nowhere.yaml\nname: b\n", "includes .*nowhere.yaml, which does not exist"),
    ],
)
def test_malformed_task_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(UserError, match=message) as error:
        discover_tasks([tmp_path])
    assert "\n" not in str(error.value) and "bad.yaml" in str(error.value)


def test_a_task_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\ntype: generate_until\n".encode("latin-1"))
    with pytest.raises(UserError, match="latin1.yaml is not UTF-8 text"):
        discover_tasks([tmp_path])


def test_bad_filters_and_metrics_fail_before_any_model_work(tmp_path: Path) -> None:
    def spec_with(extra: str) -> str:
        return _BASE.replace("metrics: [{metric: exact_match}]\n", "") + "prompt: {text: x}\n" + extra

    cases = {
        "metrics: [{metric: bleu}]\n": "unknown metric 'bleu'; built-in metrics: exact_match, f1",
        "metrics: [{metric: exact_match, ignore_kase: true}]\n": "`ignore_kase`: Extra inputs.*allowed: ignore_case",
        "metrics: [{metric: exact_match}]\nfilters: [{name: f, steps: [{function: grep}]}]\n": "unknown function 'grep'",
        "metrics: [{metric: exact_match}]\nfilters: [{name: f, steps: [{function: regex, regex_pattern: '(('}]}]\n": "bad regex",
        "metrics: [{metric: exact_match}]\nfilters: [{name: f, steps: [{function: regex, group_select: '1'}]}]\n": "`group_select`: Input should be a valid integer",
        "": "no `metrics:` and no scorer",
    }
    for extra, message in cases.items():
        spec = parse_task_spec(yaml.safe_load(spec_with(extra)), tmp_path / "t.yaml")
        task = PreparedTask(spec, TaskOptions(), [], [], "", "test")
        with pytest.raises(UserError, match=message):
            choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=False), "m")


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
