"""Shared fixtures. Tests use real parts: real (tiny or packaged) models, real data, real servers
on 127.0.0.1. Every test runs with its own evalboard home and response cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see harness/__init__.py
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # likewise, before anything calls MKL

from tiny_models import build_random_lora, build_tiny_llama  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
EVALBOARD = Path(sys.executable).parent / "evalboard"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own response cache; converted models stay shared (slow to build)."""
    monkeypatch.setenv("EVALBOARD_CACHE", str(tmp_path / "responses.sqlite"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_model_no_bos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-nobos"), add_bos=False, seed=3)


@pytest.fixture(scope="session")
def long_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with room for long prompts (MuSR's narratives, 25-shot ARC: thousands of
    tokens in its 512-token vocabulary)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-8k"), max_positions=8192)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_lora(tiny_model, tmp_path_factory.mktemp("tiny-lora"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real default model (SmolLM2-135M-Instruct), converted once from its packaged GGUF."""
    from evalboard.models.default_model import packaged_model_dir

    return packaged_model_dir("smollm2-135m-instruct")
