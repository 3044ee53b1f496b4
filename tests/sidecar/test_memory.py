"""glibc's allocator is tuned in the sidecar process: mid-sized buffers are reused from the heap,
large ones are mmapped and go back to the kernel when freed."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys

import pytest

from sidecar.memory import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES, tune_malloc

LIBC = ctypes.util.find_library("c")
# Runs in a fresh process, tuned or not. glibc's mallinfo2(): hblkhd counts mmapped bytes,
# keepcost the free bytes at the top of the main heap (what a trim would give back).
PROBE = r"""
import ctypes, ctypes.util, json, sys
from sidecar.memory import tune_malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "tune":
    assert tune_malloc()
out = {}
# Twenty 256 KiB blocks (a 100 KB exchange's record is about 211 KB), then all freed.
before = libc.mallinfo2().hblkhd
blocks = [libc.malloc(256 << 10) for _ in range(20)]
out["mid_mmapped"] = libc.mallinfo2().hblkhd - before
for b in reversed(blocks):
    libc.free(b)
out["kept_at_top"] = libc.mallinfo2().keepcost
# A 16 MiB block (a segment) after a 32 MiB one was freed (which raises an untuned threshold);
# larger than what the heap keeps free, so it cannot come from there.
libc.free(libc.malloc(32 << 20))
before = libc.mallinfo2().hblkhd
big = libc.malloc(16 << 20)
out["large_mmapped"] = libc.mallinfo2().hblkhd - before
libc.free(big)
print(json.dumps(out))
"""


def probe(mode: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    result: dict[str, int] = json.loads(out.stdout)
    return result


needs_glibc = pytest.mark.skipif(
    LIBC is None or not hasattr(ctypes.CDLL(LIBC), "mallinfo2"), reason="not glibc >= 2.33"
)


@needs_glibc
def test_large_blocks_stay_mmapped_once_tuned() -> None:
    # ... and go back to the kernel when freed (an untuned heap would keep a burst's peak).
    assert probe("tune")["large_mmapped"] >= 16 << 20


@needs_glibc
def test_mid_sized_blocks_come_from_the_heap_and_stay_there_once_tuned() -> None:
    tuned = probe("tune")
    assert tuned["mid_mmapped"] == 0
    # Freed, they stay at the top of the heap for the next batch instead of being trimmed.
    assert tuned["kept_at_top"] >= 20 * (256 << 10)
    assert tuned["kept_at_top"] < TRIM_THRESHOLD_BYTES


@needs_glibc
def test_untuned_glibc_maps_mid_sized_blocks_anew() -> None:
    # What the tuning changes: untuned (threshold 128 KiB until a large block is freed), a fresh
    # process maps each 256 KiB block on its own and faults it in anew.
    assert probe("none")["mid_mmapped"] >= 20 * (256 << 10)


def test_tuning_reports_success_on_glibc() -> None:
    assert MMAP_THRESHOLD_BYTES < TRIM_THRESHOLD_BYTES
    assert tune_malloc() is (LIBC is not None)
