"""Tune glibc's allocator for the sidecar's buffers (glibc only; elsewhere a no-op).

Two settings, both measured:

- **mmap threshold pinned at 1 MiB.** glibc raises its threshold each time a large mmapped block
  is freed, so after the first burst of multi-megabyte segment uploads later blocks of that size
  came from the heap, and the heap kept the pages of a burst's peak (a soak's RSS grew from 71 to
  100 MiB). Pinned, blocks of 1 MiB and more (segment bodies, gzip output) stay mmapped and go
  back to the kernel when freed.
- **trim threshold 8 MiB at least.** Capture records, bodies and the decoded text of 100 KB payloads are
  allocated and freed by the hundred every second. Below the mmap threshold they come from the
  heap, and the heap now keeps up to 8 MiB free at its top instead of returning it after every
  batch. Returned memory is faulted in and zeroed again on the next batch. With the old 128 KiB
  pin, every 211 KB record of a 100 KB exchange was its own fresh mapping.

  Measured: the spool writer alone, 3,000 records of 100 KB CSV in and out. It took 42 page faults
  and 142 us of kernel time per record before, and 0.1 faults and 65 us after.

  The sidecar raises it to the capture queue's bound (:func:`trim_threshold_for`:
  ``capture.queue_max_bytes`` and 16 MiB more). A writer that cannot keep up fills the queue to
  its bound, then sheds until its oldest record is written, so the queue swings between full and
  nearly empty; with 8 MiB, each swing handed the freed heap back and the event loop faulted it
  in again for the next bodies it held: 3.6 page faults per 100 KB request at 100% capture under
  full load (bench/proxy), 0.05 with the heap keeping the queue's bound. The process's peak
  memory is unchanged (a full queue holds that much anyway); after a burst it keeps up to that
  much free instead of giving it back.

Both settings turn glibc's dynamic thresholds off.
"""

from __future__ import annotations

import logging

from modeltap.core import malloc
from modeltap.core.malloc import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD

log = logging.getLogger(__name__)

MMAP_THRESHOLD_BYTES = 1 << 20
TRIM_THRESHOLD_BYTES = 8 << 20
# Beyond the queue: the batch the spool writer is writing (4 MiB of payload) and the bodies in
# flight (64 connections of 100 KB exchanges hold about 13 MB).
TRIM_MARGIN_BYTES = 16 << 20
_INT_MAX = 2**31 - 1  # mallopt takes an int


def trim_threshold_for(queue_max_bytes: int) -> int:
    """The trim threshold for a capture queue of ``queue_max_bytes`` of payload: what the heap
    may keep free at its top (at most what mallopt takes)."""
    return min(_INT_MAX, queue_max_bytes + TRIM_MARGIN_BYTES)


def tune_malloc(
    mmap_threshold: int = MMAP_THRESHOLD_BYTES, trim_threshold: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Fix glibc's mmap and trim thresholds (turning their dynamic growth off).

    Returns False where the C library is not glibc, and then changes nothing.
    """
    if malloc.glibc() is None:
        return False
    ok = malloc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) and malloc.mallopt(
        M_TRIM_THRESHOLD, trim_threshold
    )
    log.debug("malloc thresholds: mmap %d, trim %d bytes: %s", mmap_threshold, trim_threshold, ok)
    return ok
