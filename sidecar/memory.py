"""Keep the sidecar's resident memory from ratcheting up after upload bursts (glibc only).

glibc raises its mmap threshold each time a large mmapped block is freed, so after the first
burst of multi-megabyte segment uploads later blocks of that size come from the heap, and the
heap keeps the pages of a burst's peak. Pinning the threshold at 128 KiB keeps large, short-lived
buffers (segment bodies, gzip output) in mmapped blocks that go back to the kernel when freed.
In a 4-minute soak (store faults at 200 req/s) it kept RSS at 71 MiB through the first three
minutes where it had grown to 100. Request-sized buffers (below 128 KiB) are unaffected.

The step that remained after the connection-reset fault (130 MiB) was not the allocator: each
failed upload's copy of its segment lived on in reference cycles until a full garbage collection.
sidecar/store/s3.py now frees a failed request at once, and the uploader holds no segment between
attempts (bench/RESULTS.md, section bench/soak). This pin is what returns those freed
segment-sized buffers to the kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold (turning its dynamic growth off); False where not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    log.debug("malloc mmap threshold pinned at %d bytes: %s", threshold, ok)
    return ok
