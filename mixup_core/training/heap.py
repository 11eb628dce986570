"""Keep the C heap: glibc's malloc serves every allocation from its heap and never returns it.

By default glibc gives each allocation above its mmap threshold (128 kB, rising to 32 MB at
most) a fresh mapping whose pages fault in at first touch and are unmapped when freed. A pack's
activations are B times a trial's, so on a CPU they are such allocations at every step: 45% of
a packed epoch of ``small_cnn`` on MNIST-5k at B = 16 went to page faults
(benchmarks/packed_images.py, with and without ``--keep-heap``). A trial worker that trains
packs on a CPU calls :func:`keep_heap` once: its heap then grows to the pack's peak and stays
there, which is the memory the pack needs anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc malloc.h
_kept = False


def keep_heap() -> bool:
    """Sets glibc's M_MMAP_MAX to 0 and M_TRIM_THRESHOLD to its maximum for this process;
    True when they are set (now or before), False where the C library is not glibc."""
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _kept = bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _kept


__all__ = ["keep_heap"]
