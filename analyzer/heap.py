"""glibc's heap in a long-running analyzer: large buffers mapped apart, freed memory handed back.

A monitor daemon reads each new object in 1 MiB pieces and parses it in 2 MiB chunks, and with
the process engine takes back its workers' pickled parts: many short-lived buffers of a MiB or
more. glibc maps such a buffer on its own (``mmap``) only until one is freed; then it raises its
mmap threshold to that size (up to 32 MiB) and serves the next ones from its heap, whose freed
memory it keeps. In one process running windows every 5 minutes that kept memory grew without
bound: RSS after each run rose by ~11 MiB a run (354 -> 682 MiB over 30 runs of a 60-minute
window at 1,000 records/s) while the bytes in use stayed at ~107 MiB, and with worker processes
the parent kept ~370 MiB freed (bench/RESULTS.md, "The daemon's memory over 30 runs").

:func:`settle` fixes the threshold (``M_MMAP_THRESHOLD``, which also stops glibc from moving it)
and caps the arenas (``M_ARENA_MAX``, as the image's ``MALLOC_ARENA_MAX=2``), each unless its
``MALLOC_*`` variable is set; :func:`release` gives the free memory back after each run
(``malloc_trim``). Elsewhere than glibc (musl, macOS) both do nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from modeltap.core import malloc

log = logging.getLogger(__name__)

MMAP_THRESHOLD_BYTES = 1 << 20
"""Buffers of this size or more get a mapping of their own, unmapped when freed: a stream's
1 MiB piece and a 2 MiB parse chunk are. Smaller ones (a chunk's column arrays, ~200 KiB) come
from the heap, which the runs reuse."""
ARENAS = 2


def settle(environ: Mapping[str, str] | None = None) -> list[str]:
    """Set the mmap threshold and the arena cap of this process (glibc only), each unless the
    environment sets it; the settings made, as ``NAME=value``."""
    env = os.environ if environ is None else environ
    if malloc.glibc() is None:
        return []
    made = []
    for variable, param, value in (
        ("MALLOC_MMAP_THRESHOLD_", malloc.M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        ("MALLOC_ARENA_MAX", malloc.M_ARENA_MAX, ARENAS),
    ):
        if variable in env:
            continue
        if not malloc.mallopt(param, value):
            log.warning("glibc refused mallopt(%d, %d)", param, value)
            continue
        made.append(f"{variable}={value}")
    return made


def release() -> bool:
    """Give glibc's free heap memory back to the system (``malloc_trim(0)``); whether any was.
    Blocks while it walks the heap (milliseconds): call it off the event loop."""
    return malloc.trim()
