"""Worker processes keep the memory an item frees for their next item (local pool and Ray).

A module of its own so that ``executors`` (the local pool) and ``executor_ray`` both import it
and neither imports the other at load time.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # malloc.h
#: A worker keeps up to this much freed memory for its next item instead of giving it back.
_KEEP_FREED_BYTES = 256 * 2**20
#: Arrays up to this size come from the heap, so freeing them keeps their pages.
_HEAP_ARRAYS_UP_TO = 64 * 2**20


def keep_freed_memory() -> bool:
    """Have glibc keep the memory an item frees for the next item; False where not glibc.

    Each item allocates and frees tens of MB of arrays (frames, spectrograms); by default
    glibc hands those pages back to the kernel at once, and every item then pays page faults
    to get them again: measured 25 % of prepare's own Python CPU per video. A worker only ever
    runs one item at a time, so keeping them costs one item's memory. Called once per worker
    process (the local pool's initializer, a Ray worker's first item).
    """
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:  # musl and others: their allocators keep their own counsel
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _HEAP_ARRAYS_UP_TO)
        and mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)
    )
