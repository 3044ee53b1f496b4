"""The glibc mmap threshold is pinned in the sidecar process (so large buffers go back to the OS)."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

from sidecar.memory import pin_mmap_threshold


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found")
def test_large_blocks_are_returned_to_the_kernel_after_pinning() -> None:
    """After a 4 MiB block is freed glibc raises its threshold, so later 1 MiB blocks come from
    the heap and stay resident under a live block above them; pinned, they are mmapped and
    unmapped on free, so RSS falls back (each case in a fresh process)."""
    code = r"""
import ctypes, sys
from sidecar.memory import pin_mmap_threshold
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
if sys.argv[1] == "pin":
    assert pin_mmap_threshold()
big = bytearray(4 << 20); del big          # glibc raises its threshold here unless pinned
before = rss()
blocks = [bytearray(1 << 20) for _ in range(64)]
top = bytearray(4096)                      # a live block above them stops the heap's trim
del blocks
print(rss() - before)
"""
    grown = {}
    for mode in ("pin", "default"):
        out = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
        )
        grown[mode] = int(out.stdout.strip())
    assert grown["pin"] < 8 * 1024, grown  # KiB: the 64 MiB went back
    assert grown["default"] > 32 * 1024, grown  # the heap kept it without pinning


def test_pinning_reports_success_on_glibc() -> None:
    assert pin_mmap_threshold() is (ctypes.util.find_library("c") is not None)
