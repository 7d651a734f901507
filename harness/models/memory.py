"""Give freed memory back to the operating system.

torch's CPU tensors come from the C library's malloc. A generation batch or a loglikelihood wave
frees tens of MiB of tensors at once, and glibc keeps such blocks in its heap for reuse, where
fragmentation makes the next, differently sized batch take fresh memory: the process's resident
size ratchets up from task to task. `malloc_trim(0)` returns every free page of the heap. It
costs a few milliseconds, so it is called between batches, not inside them. (Forcing every large
block to be mmapped instead, MALLOC_MMAP_THRESHOLD_, bounds memory too but made scoring ~30%
slower: every tensor then starts with page faults.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_free_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
