"""`--batch-size auto`: the largest batch a local model fits, found by trying, as lm-eval does
(accelerate's `find_executable_batch_size`): start at MAX_AUTO_BATCH (lm-eval's default
`--max_batch_size`) or the number of requests if smaller, run one forward pass of that many copies
of the longest sequence, and halve on an out-of-memory error until one fits.

accelerate's helper is not used: it retries a whole function (here: a whole task's scoring, whose
answers are already being cached one by one) and only knows CUDA's errors; this probe retries one
forward pass and also knows the CPU allocator's.
"""

from __future__ import annotations

from typing import Any

MAX_AUTO_BATCH = 64
_OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory", "failed to allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(word in str(exc).lower() for word in _OOM_WORDS)


def largest_fitting_batch(model: Any, width: int, device: str, requests: int) -> int:
    """The largest batch, halving from min(MAX_AUTO_BATCH, `requests`), for which a forward pass
    over `width` tokens per row runs without running out of memory."""
    import torch

    size = max(1, min(MAX_AUTO_BATCH, requests))
    while True:
        try:
            with torch.inference_mode():
                ids = torch.zeros((size, max(1, width)), dtype=torch.long, device=device)
                model(input_ids=ids, use_cache=False)
            return size
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if not is_out_of_memory(exc) or size == 1:
                raise
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        size //= 2
