"""glibc's allocator is tuned in the sidecar process: mid-sized buffers are reused from the heap,
large ones are mmapped and go back to the kernel when freed."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys

import pytest

import sidecar.__main__ as sidecar_main
import sidecar.memory
from sidecar.memory import (
    MMAP_THRESHOLD_BYTES,
    TRIM_MARGIN_BYTES,
    TRIM_THRESHOLD_BYTES,
    trim_threshold_for,
    tune_malloc,
)

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
elif sys.argv[1] == "queue":  # tuned for a capture queue of argv[2] bytes
    from sidecar.memory import trim_threshold_for
    assert tune_malloc(trim_threshold=trim_threshold_for(int(sys.argv[2])))
out = {}
# Twenty 256 KiB blocks (a 100 KB exchange's record is about 211 KB), then all freed.
before = libc.mallinfo2().hblkhd
count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
blocks = [0] * count  # (the list's storage allocated first, not between the blocks)
for i in range(count):
    blocks[i] = libc.malloc(256 << 10)
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


def probe(mode: str, *args: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, *args], capture_output=True, text=True, check=True
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


def test_the_trim_threshold_covers_the_capture_queue() -> None:
    assert trim_threshold_for(256 << 20) == (256 << 20) + TRIM_MARGIN_BYTES
    assert trim_threshold_for(1) == TRIM_MARGIN_BYTES + 1 > TRIM_THRESHOLD_BYTES
    assert trim_threshold_for(64 << 30) == 2**31 - 1  # what mallopt's int takes


@needs_glibc
def test_a_queue_worth_of_freed_bodies_stays_at_the_top_of_the_heap() -> None:
    # A saturated writer lets its queue swing between full and nearly empty: 40 MiB of held
    # bodies freed at once (a 64 MiB queue, the deploy base's) stay mapped for the next ones,
    # where the 8 MiB threshold gave them back to be faulted in again.
    blocks = str(160)  # 160 x 256 KiB = 40 MiB
    assert probe("queue", str(64 << 20), blocks)["kept_at_top"] >= 160 * (256 << 10)
    assert probe("tune", "0", blocks)["kept_at_top"] < TRIM_THRESHOLD_BYTES


def test_the_sidecar_tunes_malloc_for_its_capture_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, int]] = []

    def tune(**kwargs: int) -> bool:
        calls.append(kwargs)
        return True

    monkeypatch.setattr(sidecar.memory, "tune_malloc", tune)
    monkeypatch.setattr(sidecar_main, "run_event_loop", lambda _main: 0)
    assert sidecar_main.main(["--capture.queue-max-bytes", str(100 << 20)]) == 0
    assert calls == [{"trim_threshold": (100 << 20) + TRIM_MARGIN_BYTES}]
