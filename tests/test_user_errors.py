"""Hardening: inputs and environments that used to end in a traceback, several lines, or a
silently wrong result now end in one line on stderr and exit code 2 (or a warning and a correct
record), with nothing computed lost."""

from __future__ import annotations

import gzip
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from cli_helpers import EVALBOARD, assert_one_line_error, run_cli


def test_no_home_folder_is_one_line_naming_the_fix() -> None:
    """A container run as a uid with no passwd entry and no HOME: Path.home() raised RuntimeError."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become a uid that has no passwd entry")
    uid = 4243
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    work = Path(tempfile.mkdtemp(prefix="evalboard-nohome-", dir="/var/tmp"))
    try:
        work.chmod(0o777)
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", EVALBOARD, "run",
                   "--model", "chance:0", "--tasks", "arc_easy", "--limit", "1", "--output", str(work / "out")]
        env = {"PATH": os.environ["PATH"]}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=work)
        assert_one_line_error(result, "HOME is unset and uid 4243 has no passwd entry", "set EVALBOARD_HOME")
        assert not (work / "out").exists() or not any((work / "out").iterdir())
        done = subprocess.run(command, env={**env, "EVALBOARD_HOME": str(work / "home")}, capture_output=True,
                              text=True, timeout=300, cwd=work)
        assert done.returncode == 0, done.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _chance_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("run", "--model", "chance:0", "--tasks", "arc_easy", "--limit", "2", "--no-cache",
                   "--output", str(tmp_path / "out"), *args)


@pytest.mark.parametrize("name,content,fragments", [
    ("test.jsonl", b'{"id": 1}\n{oops\n', ["test.jsonl line 2 is not valid JSON", "each line must be one JSON object"]),
    ("test.jsonl", b'{"id": "caf\xe9"}\n', ["test.jsonl is not UTF-8 text (byte 0xe9)", "save it as UTF-8"]),
    ("test.jsonl.gz", gzip.compress(b'{"id": 1}\n' * 50)[:30], ["test.jsonl.gz is not a complete gzip file"]),
])
def test_a_broken_data_dir_file_is_one_line(tmp_path: Path, name: str, content: bytes, fragments: list[str]) -> None:
    """A bad local copy used to end in a JSONDecodeError or UnicodeDecodeError traceback."""
    (tmp_path / "data" / "arc_easy").mkdir(parents=True)
    (tmp_path / "data" / "arc_easy" / name).write_bytes(content)
    result = _chance_run(tmp_path, "--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, "--data-dir: ", *fragments, f"move it out of {tmp_path / 'data'}")
    assert not list((tmp_path / "out").glob("*/run.json"))


def test_an_empty_data_dir_says_it_fell_back_to_the_package(tmp_path: Path) -> None:
    """`--data-dir` with no file for the task silently used the packaged data instead."""
    (tmp_path / "data").mkdir()
    result = _chance_run(tmp_path, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: --data-dir")]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"warning: --data-dir {tmp_path / 'data'} has no file for task arc_easy split "
                                  f"test (looked for arc_easy/test.jsonl, "), warnings[0]
    assert "; using package:" in warnings[0], warnings[0]


def test_the_results_store_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Runs hold every model answer, like the response cache: they were written with the umask
    (world-readable under 022, world-writable under 000)."""
    out = tmp_path / "deeper" / "results"
    result = subprocess.run(["sh", "-c", 'umask 000 && exec "$@"', "sh", EVALBOARD, "run", "--model", "chance:0",
                             "--tasks", "arc_easy", "--limit", "2", "--no-cache", "--output", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    created = [tmp_path / "deeper", *out.rglob("*"), out]
    assert {p.name for p in created} >= {"run.json", "arc_easy.jsonl", "samples"}
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in created}
    assert modes == {name: ("0o700" if (tmp_path / name).is_dir() else "0o600") for name in modes}


def test_leaderboard_build_says_which_runs_and_logs_it_could_not_read(tmp_path: Path) -> None:
    """Damaged runs and sample logs were skipped silently (exit 0, fewer models or items, no
    word): now each is a warning line on stderr and a row of the page's status section."""
    from synthetic_runs import model_zoo, write_store

    store = tmp_path / "results"
    folders = write_store(store, model_zoo(5), tasks={"arc_easy": 30})
    (folders[0] / "run.json").write_text('{"schema": "evalboard.run/2", ')  # truncated
    (folders[1] / "run.json").write_bytes(b'{"schema": "evalboard.run/2\xff"}')
    garbage = next((folders[2] / "samples").glob("*.jsonl"))
    garbage.write_text(garbage.read_text() + "not json at all\n")
    truncated = next((folders[3] / "samples").glob("*.jsonl"))
    truncated.write_text(truncated.read_text()[:-40])
    short = next((folders[4] / "samples").glob("*.jsonl"))
    short.write_text("".join(short.read_text().splitlines(keepends=True)[:-3]))  # cut at a line boundary
    page = tmp_path / "page" / "index.html"
    result = run_cli("leaderboard", "build", "--results", str(store), "--output", str(page), "--rounds", "10",
                     "--no-cache")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 5, result.stderr
    assert f"warning: {folders[0]} run.json is not valid JSON (Expecting property name enclosed in double " \
           f"quotes at line 1); the run is skipped" in warnings
    assert f"warning: {folders[1]} run.json is not UTF-8 text; the run is skipped" in warnings
    for log in (garbage, truncated):
        (line,) = [w for w in warnings if w.startswith(f"warning: {log} could not be read (")]
        assert line.endswith("; its items are left out of the ratings"), line
    assert f"warning: {short} holds 27 of the run's 30 items (truncated?); its items are left out of the ratings" \
        in warnings
    html = page.read_text()
    assert "Not read from the results store" in html
    for path in (folders[0], folders[1], garbage, truncated, short):
        assert str(path) in html


def test_more_few_shot_examples_than_the_pool_holds_is_refused(tmp_path: Path) -> None:
    """`--num-fewshot 100000` used arc_easy's 570 examples but recorded 100000; lm-eval refuses
    such a count (random.sample raises), and so do we, naming the most that can be given."""
    result = _chance_run(tmp_path, "--num-fewshot", "100000")
    assert_one_line_error(result, "--num-fewshot 100000 asks for more examples than task arc_easy has",
                          "its few-shot pool holds 570; use --num-fewshot 570 or less")
    assert not list((tmp_path / "out").glob("*/run.json"))


@pytest.mark.parametrize("device,fragments", [
    ("cuda", ["device 'cuda' asked for, but this machine has no usable CUDA GPU", "use --device cpu or auto"]),
    ("cuda:7", ["device 'cuda:7' asked for"]),
    ("gpu", ["unknown device 'gpu'; use auto, cpu, cuda, cuda:N or mps"]),
])
def test_an_unusable_device_is_one_line(tiny_model: Path, tmp_path: Path, device: str, fragments: list[str]) -> None:
    """`--device cuda` on a CPU-only torch (or a typo like `gpu`) failed inside `.to()` with a traceback."""
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the GPUs asked for")
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "arc_easy", "--limit", "2", "--no-cache",
                     "--device", device, "--output", str(tmp_path / "out"))
    assert_one_line_error(result, *fragments)


def _broken_adapter(adapter: Path, directory: Path, damage: str) -> Path:
    """A copy of a real LoRA adapter with junk weights, or with tensors of the wrong shape (as
    when an adapter trained for one base is applied to another)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(adapter, directory)
    weights = directory / "adapter_model.safetensors"
    if damage == "junk":
        weights.write_bytes(b"not a safetensors file" * 8)
    else:
        tensors = load_file(str(weights))
        save_file({name: tensor[:, :3].contiguous() if "lora_A" in name else tensor
                   for name, tensor in tensors.items()}, str(weights))
    return directory


@pytest.mark.parametrize("damage,fragment", [("junk", "SafetensorError"), ("shapes", "size mismatch for")])
def test_an_unusable_adapter_is_one_line(tiny_model: Path, tiny_adapter: Path, tmp_path: Path, damage: str,
                                         fragment: str) -> None:
    broken = _broken_adapter(tiny_adapter, tmp_path / damage, damage)
    result = run_cli("run", "--model", f"hf:{tiny_model},adapter={broken}", "--tasks", "arc_easy", "--limit", "2",
                     "--output", str(tmp_path / "out"))
    assert_one_line_error(result, f"adapter {broken} could not be applied to base model", fragment,
                          "saved with peft's save_pretrained")


def test_a_full_disk_under_the_response_cache_loses_no_answers(tiny_model: Path, tmp_path: Path) -> None:
    """The cache's disk fills up mid-run: one warning saying so, the run completes, and its record
    holds every answer (a traceback used to end the run and save nothing)."""
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    try:
        result = subprocess.run([EVALBOARD, "run", "--model", f"hf:{tiny_model}", "--tasks", "hellaswag",
                                 "--limit", "60", "--output", str(tmp_path / "out")],
                                env={**os.environ, "EVALBOARD_CACHE": str(full / "cache.sqlite")},
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        warnings = [line for line in result.stderr.splitlines() if "response cache" in line]
        assert len(warnings) == 1 and "the disk is full" in warnings[0], result.stderr
        from evalboard.records.run_record import load_run

        (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
        record = load_run(run_dir)
        assert record.tasks["hellaswag"].n_items == 60 and record.tasks["hellaswag"].failed_items == 0
        assert len(record.load_samples("hellaswag")) == 60
    finally:
        subprocess.run(["umount", str(full)], check=True)
