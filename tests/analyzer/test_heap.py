"""analyzer.heap: a long-running monitor's freed large buffers go back to the system.

glibc serves a buffer of a MiB or more from its heap once one of that size has been freed (its
mmap threshold moves up), and a monitor daemon's heap then kept ~11 MiB more after each run.
Each check runs in a fresh interpreter: the threshold is process-wide state.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import heap, monitor
from analyzer.config import load_config
from analyzer.engine import InlineEngine
from modeltap.core import malloc

# What the daemon's runs do, in miniature: a freed 4 MiB buffer, then a 2 MiB one. Prints how
# many chunks glibc has mapped apart before and while the 2 MiB one is held, and after it is
# freed.
PROBE = """
import ctypes, json, sys
from analyzer import heap

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
made = heap.settle(environ={}) if sys.argv[1] == "settle" else []
big = libc.malloc(4 << 20)
libc.free(big)
before = libc.mallinfo2().hblks
piece = libc.malloc(2 << 20)
held = libc.mallinfo2().hblks
libc.free(piece)
print(json.dumps({"made": made, "before": before, "held": held,
                  "after": libc.mallinfo2().hblks}))
"""


def _probe(mode: str) -> dict[str, object]:
    import json

    # glibc's defaults: no MALLOC_* variables (Dask's local cluster puts MALLOC_TRIM_THRESHOLD_
    # into the test session's environment, which turns the dynamic threshold off).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    found: dict[str, object] = json.loads(out.stdout)
    return found


glibc = pytest.mark.skipif(malloc.glibc() is None, reason="glibc's malloc only")


@glibc
def test_settle_maps_a_large_buffer_apart_after_a_larger_one_was_freed() -> None:
    found = _probe("settle")
    assert found["made"] == [
        f"MALLOC_MMAP_THRESHOLD_={heap.MMAP_THRESHOLD_BYTES}",
        f"MALLOC_ARENA_MAX={heap.ARENAS}",
    ]
    assert found["held"] == found["before"] + 1  # type: ignore[operator]
    assert found["after"] == found["before"]  # unmapped when freed: back to the system


@glibc
def test_without_settle_glibc_keeps_it_in_its_heap() -> None:
    """What the daemon did before: the threshold follows the freed 4 MiB buffer up, and the
    2 MiB one comes from the heap, whose freed memory glibc keeps."""
    found = _probe("default")
    assert found["made"] == []
    assert found["held"] == found["before"]


@glibc
def test_settle_leaves_what_the_environment_sets() -> None:
    env = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_ARENA_MAX": "4"}
    assert heap.settle(environ=env) == []


def test_release_runs_anywhere() -> None:
    assert heap.release() in (True, False)


async def test_the_daemon_settles_the_heap_then_releases_it_after_each_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_forever``: the heap settings before the first run, a release after every run."""
    toml = tmp_path / "monitor.toml"
    toml.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path}/c"\nreports = "file://{tmp_path}/r"\n'
        'host = "127.0.0.1"\nport = 0\ninterval_seconds = 0.001\n\n'
        f'[[endpoints]]\nname = "ep"\nvariant = "v"\nbaseline = "file://{tmp_path}/b"\n'
    )
    cfg = load_config(toml, environ={})
    calls: list[str] = []

    async def no_targets(_cfg: object) -> list[object]:
        return []

    async def run_all(*_args: object, **_kw: object) -> list[object]:
        calls.append("run")
        if calls.count("run") == 3:
            raise asyncio.CancelledError  # as SIGTERM does: the daemon stops
        return []

    monkeypatch.setattr(monitor, "load_targets", no_targets)
    monkeypatch.setattr(monitor, "run_all", run_all)
    monkeypatch.setattr(heap, "settle", lambda: calls.append("settle") or [])
    monkeypatch.setattr(heap, "release", lambda: calls.append("release") or True)
    await monitor.run_forever(cfg, InlineEngine())
    assert calls == ["settle", "run", "release", "run", "release", "run"]
