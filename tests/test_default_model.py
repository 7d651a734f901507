"""The packaged default model's one-time conversion (GGUF -> float32 safetensors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from evalboard.models.default_model import move_into_place


def _folder(path: Path, **files: str) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_a_conversion_moves_into_place(tmp_path: Path) -> None:
    staging = _folder(tmp_path / ".model-x1", **{"config.json": "ours"})
    move_into_place(staging, tmp_path / "model")
    assert (tmp_path / "model" / "config.json").read_text() == "ours" and not staging.exists()


def test_two_processes_converting_at_once_both_get_the_model(tmp_path: Path) -> None:
    """The second to finish finds the other's finished folder in place: it keeps that one."""
    target = _folder(tmp_path / "model", **{"config.json": "theirs"})
    move_into_place(_folder(tmp_path / ".model-x1", **{"config.json": "ours"}), target)
    assert (target / "config.json").read_text() == "theirs"


def test_a_folder_in_the_way_that_is_not_a_model_is_still_an_error(tmp_path: Path) -> None:
    target = _folder(tmp_path / "model", **{"stray.txt": "x"})
    with pytest.raises(OSError):
        move_into_place(_folder(tmp_path / ".model-x1", **{"config.json": "ours"}), target)
