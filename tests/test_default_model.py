"""The packaged default model's one-time conversion (GGUF -> float32 safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalboard.models.default_model import PACKAGED_MODELS, _convert_gguf
from evalboard.paths import package_root


@pytest.mark.slow
def test_two_processes_converting_at_once_both_get_the_model(smollm2_dir: Path, tmp_path: Path) -> None:
    """The second to finish finds the folder already there (the first renamed its staging folder
    into place): it keeps that one and does not fail."""
    module, gguf_name = PACKAGED_MODELS["smollm2-135m-instruct"]
    root = package_root(module)
    assert root is not None
    target = tmp_path / "models" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text(json.dumps({"converted_by": "the other process"}))
    _convert_gguf(root, gguf_name, target)
    assert json.loads((target / "config.json").read_text()) == {"converted_by": "the other process"}
    assert [p.name for p in target.parent.iterdir()] == ["smollm2-135m-instruct"]  # no staging left behind
    with pytest.raises(OSError):  # a folder in the way that is not a model is still an error
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "stray.txt").write_text("x")
        _convert_gguf(root, gguf_name, tmp_path / "other")
