"""glibc's allocator, reached through ctypes: the settings the sidecar and the analyzer tune.

Both are long-running processes whose buffers of a MiB and more come and go by the hundred;
glibc's dynamic thresholds then keep freed memory in its heap (sidecar/memory.py and
analyzer/heap.py say what each measured and sets). Elsewhere than glibc (musl, macOS) there is
no ``mallopt``: every function here does nothing and says so.
"""

from __future__ import annotations

import ctypes
import functools

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (it has ``mallopt`` and ``malloc_trim``)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (present in glibc only)
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return libc


def mallopt(param: int, value: int) -> bool:
    """``mallopt(param, value)``; False where it refused or the C library is not glibc."""
    libc = glibc()
    return libc is not None and libc.mallopt(param, value) == 1


def trim() -> bool:
    """Give glibc's free heap memory back to the system (``malloc_trim(0)``); whether any was.
    Walks the heap (milliseconds): call it off an event loop."""
    libc = glibc()
    return libc is not None and bool(libc.malloc_trim(0))
