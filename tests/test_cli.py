"""The `evalboard` command: a normal run, and every kind of bad input ending in one line, exit
code 2, no traceback and no partial result files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_cli
from evalboard.cli.summary import format_summary
from evalboard.records.run_record import load_run


def _run_dirs(output: Path) -> list[Path]:
    return sorted(p for p in output.iterdir()) if output.exists() else []


def test_run_prints_a_summary_and_stores_the_run(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "arc_easy,mmlu", "--limit", "4",
                     "--num-fewshot", "1", "--output", str(out), "--show-subtasks")
    assert result.returncode == 0, result.stderr
    assert "arc_easy" in result.stdout and "acc_norm" in result.stdout and "saved to" in result.stdout
    (run_dir,) = _run_dirs(out)
    record = load_run(run_dir)
    assert record.tasks["mmlu"].num_fewshot == 1
    # the subject's own row, under the group's
    subtasks = record.tasks["mmlu"].subtasks
    assert subtasks is not None
    subject = subtasks["abstract_algebra"]["acc"]
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("  abstract_algebra") and " acc " in line)
    assert f"{subject.value:.4f}" in lines[row] and lines[row - 1].startswith("mmlu")
    assert "abstract_algebra" not in format_summary(record)  # shown on request only
    assert record.model.fingerprint_parts["weights"]
    samples = record.load_samples("arc_easy")
    assert len(samples) == 4 and "Question:" in str(samples[0].prompt)


def test_tasks_lists_descriptions_and_counts() -> None:
    result = run_cli("tasks")
    assert result.returncode == 0
    assert "14042" in result.stdout and "lm-eval mmlu" in result.stdout


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--tasks", "no_such_task"], ["unknown task", "no_such_task"]),
        (["--tasks", "arc_easy", "--limit", "0"], ["--limit", "positive"]),
        (["--tasks", "arc_easy", "--limit", "-3"], ["--limit", "positive"]),
    ],
)
def test_bad_task_arguments(tiny_model: Path, tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    result = run_cli("run", "--model", f"hf:{tiny_model}", *args, "--output", str(tmp_path / "r"))
    assert_one_line_error(result, *fragments)
    assert _run_dirs(tmp_path / "r") == []


@pytest.mark.parametrize(
    "model,fragments",
    [
        ("nonsense", ["not of the form SCHEME:TARGET"]),
        ("gguf:whatever", ["unknown model scheme", "gguf"]),
        ("hf:/no/such/model/folder", ["does not exist"]),
    ],
)
def test_bad_model_specs(tmp_path: Path, model: str, fragments: list[str]) -> None:
    result = run_cli("run", "--model", model, "--tasks", "arc_easy", "--limit", "2", "--output", str(tmp_path / "r"))
    assert_one_line_error(result, *fragments)
    assert _run_dirs(tmp_path / "r") == []


def test_missing_adapter_path(tiny_model: Path, tmp_path: Path) -> None:
    result = run_cli("run", "--model", f"hf:{tiny_model},adapter={tmp_path / 'nope'}", "--tasks", "arc_easy",
                     "--limit", "2", "--output", str(tmp_path / "r"))
    assert_one_line_error(result, "not a PEFT adapter folder")


def test_malformed_task_file_in_include_path(tiny_model: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "mytasks"
    tasks.mkdir()
    (tasks / "broken.yaml").write_text("name: broken\ntype: multiple_choice\n")
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "arc_easy", "--include-path", str(tasks),
                     "--output", str(tmp_path / "r"))
    assert_one_line_error(result, "broken.yaml", "the required key `data` is missing")


def test_unwritable_output_directory(tiny_model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "arc_easy", "--limit", "2",
                     "--output", str(blocker / "results"))
    assert_one_line_error(result, "not writable", "--output")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_disk_full_while_writing_leaves_nothing_behind_and_loses_no_answers(tiny_model: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(full)], check=True)
    try:
        args = ["run", "--model", f"hf:{tiny_model}", "--tasks", "hellaswag", "--limit", "40"]
        result = run_cli(*args, "--output", str(full))
        assert_one_line_error(result, "disk is full", "response cache")
        assert [p.name for p in full.iterdir()] == []  # no partial run folder
        rerun = run_cli(*args, "--output", str(tmp_path / "roomy"))
        assert rerun.returncode == 0, rerun.stderr
        (run_dir,) = _run_dirs(tmp_path / "roomy")
        usage = load_run(run_dir).usage
        assert usage.requests_answered_now == 0 and usage.cache_hits == 160
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_user_modules_named_like_ours_do_not_shadow_them(tmp_path: Path) -> None:
    """A user's tasks.py / leaderboard.py / harness.py in the working directory is never imported
    in place of ours, by the console command or by `python -m`."""
    for name in ("tasks", "leaderboard", "harness", "evalboard_tasks"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('the user module was imported')\n")
    result = run_cli("tasks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import sys

    probe = subprocess.run(
        [sys.executable, "-c", "import evalboard.tasks, evalboard.leaderboard, evalboard.cli; print(evalboard.tasks.__file__)"],
        cwd=tmp_path, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert str(tmp_path) not in probe.stdout
    module = subprocess.run([sys.executable, "-m", "evalboard.cli", "tasks"], cwd=tmp_path, capture_output=True, text=True)
    assert module.returncode == 0, module.stderr
