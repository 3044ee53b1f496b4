"""The glibc mmap threshold is pinned in the sidecar process (so large buffers go back to the OS)."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

from sidecar.memory import pin_mmap_threshold

LIBC = ctypes.util.find_library("c")
# A 1 MiB block allocated after a 4 MiB block was freed (which raises an unpinned threshold):
# pinned, it is mmapped (unmapped on free). glibc's mallinfo2().hblkhd counts mmapped bytes.
PROBE = r"""
import ctypes, ctypes.util, sys
from sidecar.memory import pin_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "pin":
    assert pin_mmap_threshold()
big = ctypes.create_string_buffer(4 << 20)
del big
before = libc.mallinfo2().hblkhd
block = ctypes.create_string_buffer(1 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


def mmapped_growth(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(LIBC is None or not hasattr(ctypes.CDLL(LIBC), "mallinfo2"),
                    reason="not glibc >= 2.33")  # fmt: skip
def test_large_blocks_stay_mmapped_once_pinned() -> None:
    # Pinned, the 1 MiB block is its own mapping. (Unpinned, glibc usually puts it on the heap
    # after raising its threshold, but whether it does depends on the process's history.)
    assert mmapped_growth("pin") >= 1 << 20


def test_pinning_reports_success_on_glibc() -> None:
    assert pin_mmap_threshold() is (LIBC is not None)
