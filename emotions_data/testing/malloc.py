"""Where glibc puts a large allocation: the check that a worker keeps freed memory (tests)."""

from __future__ import annotations

import ctypes
import sys

#: Above glibc's largest dynamic mmap threshold (32 MiB on 64-bit), below a worker's 64 MiB:
#: mapped on its own by default, from the heap in a worker that keeps freed memory.
PROBE_BYTES = 48 * 2**20


class _Mallinfo2(ctypes.Structure):
    # struct mallinfo2, glibc >= 2.33 (malloc.h)
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def large_block_from_heap(_: object = None) -> bool | None:
    """Whether a PROBE_BYTES malloc in this process comes from the heap rather than its own
    mmap; None where that cannot tell (not glibc >= 2.33, or the heap already holds that
    much free memory, which serves the block whatever the threshold). Takes and ignores one
    argument, so it can run as a task of ``run_tasks``."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _Mallinfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.malloc_trim(0)  # give back the free top of the heap: the block must come anew
    before = mallinfo2()
    if before.fordblks >= PROBE_BYTES:  # a free chunk may be big enough: no answer
        return None
    block = libc.malloc(PROBE_BYTES)
    mapped = mallinfo2().hblkhd - before.hblkhd
    libc.free(block)
    return bool(mapped < PROBE_BYTES)
