"""Models a Python caller has already loaded (`evaluate(model, tasks, tokenizer=...)`, as lm-eval's
`HFLM(pretrained=model, tokenizer=tokenizer)`): kept in this process under a spec of their own,
`hf:in-memory:<weights hash>`, which the hf: adapter recognises instead of loading from a path.

The key is a hash of the weights' contents (every parameter and buffer, by name), so the model
fingerprint and the response cache stay honest: the same model object after a training step is
another model, and two copies of the same weights share cached answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from evalboard.errors import UserError

PREFIX = "in-memory:"


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    tokenizer: Any
    weights_hash: str
    name: str  # what the model calls itself (config._name_or_path), for the default label


_LOADED: dict[str, LoadedModel] = {}


def weights_hash(model: Any) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the model's state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().contiguous().cpu().view(-1).view(dtype=_bytes_dtype()).numpy().tobytes())
    return digest.hexdigest()


def _bytes_dtype() -> Any:
    import torch

    return torch.uint8


def register_loaded(model: Any, tokenizer: Any) -> tuple[str, str]:
    """(the spec to evaluate it under, the model's own name) for an already loaded transformers
    model and its tokenizer."""
    if not hasattr(model, "state_dict") or not hasattr(model, "config"):
        raise UserError(f"model must be a spec string or a loaded transformers model, not {type(model).__name__}")
    if tokenizer is None or not callable(getattr(tokenizer, "encode", None)):
        raise UserError("a loaded model needs its tokenizer too: evaluate(model, tasks, tokenizer=tokenizer)")
    key = weights_hash(model)[:16]
    name = str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
    _LOADED[key] = LoadedModel(model, tokenizer, key, name)
    return f"hf:{PREFIX}{key}", name


def loaded_model(target: str) -> LoadedModel | None:
    """The registered model a spec's target names, or None for any other target."""
    if not target.startswith(PREFIX):
        return None
    found = _LOADED.get(target[len(PREFIX):])
    if found is None:
        raise UserError(f"hf:{target} names a model loaded in another Python process; pass the model "
                        f"object to evaluate() again")
    return found
