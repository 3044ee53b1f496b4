"""Segment files: what lands on disk is exactly the lines appended, with direct I/O or without."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sidecar import segment
from sidecar.metrics import SidecarMetrics
from sidecar.segment import BLOCK, STAGE_BYTES, SegmentFile
from sidecar.spool import OPEN_SUFFIX, SEALED_SUFFIX, recover


def open_segment(path: Path, direct: bool, stage: mmap.mmap | None = None) -> SegmentFile:
    """A segment file; direct I/O asked for where the temp dir's filesystem refuses it skips."""
    f = SegmentFile(path, direct, stage=stage)
    if direct and not f.direct:
        f.close(fsync=False)
        pytest.skip(f"the filesystem of {path.parent} does not take O_DIRECT")
    return f


_ALPHABET = bytes(b"abcdef,0123"[i % 11] for i in range(256))


def lines_of(sizes: list[int], seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(n - 1).translate(_ALPHABET) + b"\n" for n in sizes]


def stage_lines(f: SegmentFile, lines: list[bytes]) -> None:
    """Write lines into the segment's staging buffer in place, as the spool writer does."""
    for line in lines:
        start = f.staged
        f.stage[start : start + len(line)] = line
        f.stage_to(start + len(line))


@pytest.mark.parametrize("direct", [True, False])
def test_lines_staged_in_place_land_and_a_failed_commit_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    f = open_segment(tmp_path / "s", direct)
    first = lines_of([700, BLOCK + 5, 3 * BLOCK], seed=6)
    stage_lines(f, first)
    assert f.pending == sum(map(len, first)) and f.size == 0
    assert f.commit() == sum(map(len, first))
    assert f.pending == 0 and f.size == sum(map(len, first))
    # Lines staged and then discarded (the byte budget) never reach the file.
    stage_lines(f, lines_of([50], seed=7))
    f.discard()
    assert f.commit() == 0
    name = "pwrite" if direct else "write"
    real = getattr(os, name)
    calls = {"n": 0}

    def failing(fd: int, data: memoryview, *rest: int) -> int:
        calls["n"] += 1
        if direct and calls["n"] == 1:  # a short write: the first block lands, then no space
            return real(fd, data[:BLOCK], *rest)  # type: ignore[no-any-return]
        if calls["n"] == (2 if direct else 1):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, *rest)  # type: ignore[no-any-return]

    monkeypatch.setattr(os, name, failing)
    stage_lines(f, lines_of([2 * BLOCK + 10, 30], seed=8))
    with pytest.raises(OSError):
        f.commit()
    assert f.pending == 0 and f.size == sum(map(len, first))
    assert f.path.read_bytes()[: f.size] == b"".join(first)
    assert set(f.path.read_bytes()[f.size :]) <= {0}
    monkeypatch.setattr(os, name, real)
    last = lines_of([BLOCK - 1, 20], seed=9)
    stage_lines(f, last[:1])
    f.append(last[1:])  # commits what is staged first
    f.close(fsync=False)
    assert f.path.read_bytes() == b"".join(first) + b"".join(last)


def test_a_direct_commit_is_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each direct write costs a VM exit and a wait for the device: whole blocks and the padded
    partial one go out together, and the partial one is rewritten, with the next lines, next time."""
    f = open_segment(tmp_path / "s", True)
    real = os.pwrite
    writes: list[tuple[int, int]] = []

    def counting(fd: int, data: memoryview, offset: int) -> int:
        writes.append((offset, len(data)))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", counting)
    first = lines_of([3 * BLOCK + 100, 50], seed=11)
    stage_lines(f, first)
    f.commit()
    second = lines_of([BLOCK], seed=12)
    stage_lines(f, second)
    f.commit()
    assert writes == [(0, 4 * BLOCK), (3 * BLOCK, 2 * BLOCK)]
    f.close(fsync=False)
    assert f.path.read_bytes() == b"".join(first + second)


def test_buffered_writes_cut_short_write_each_byte_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write may take fewer bytes than given; the rest goes out next, once. (Compiled, a
    write call inside a slice's bound ran twice: every staged byte was written twice.)"""
    f = open_segment(tmp_path / "s", False)
    real_write, calls = os.write, []

    def short_write(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, data[:1000])

    def short_writev(fd: int, parts: list[bytes]) -> int:
        return short_write(fd, memoryview(parts[0]))

    monkeypatch.setattr(os, "write", short_write)
    monkeypatch.setattr(os, "writev", short_writev)
    staged = lines_of([2500, 40], seed=13)
    stage_lines(f, staged)
    assert f.commit() == 2540
    assert calls == [2540, 1540, 540]
    appended = lines_of([1500, 30], seed=14)
    assert f.append(appended) == 1530
    f.close(fsync=False)
    assert f.path.read_bytes() == b"".join(staged + appended)


@pytest.mark.parametrize("direct", [True, False])
def test_batches_land_byte_for_byte(tmp_path: Path, direct: bool) -> None:
    # Sizes that cross block and stage boundaries, hit them exactly, and exceed the stage.
    batches = [
        lines_of([10]),
        lines_of([BLOCK - 10, 1, BLOCK]),
        lines_of([300] * 50, seed=1),
        lines_of([STAGE_BYTES - 7, 5000], seed=2),
        lines_of([3 * STAGE_BYTES + 123], seed=3),
        lines_of([BLOCK]),
    ]
    f = open_segment(tmp_path / "s.jsonl.part", direct)
    assert f.direct is direct
    expected = b""
    for batch in batches:
        assert f.append(batch) == sum(map(len, batch))
        expected += b"".join(batch)
        assert f.size == len(expected)
        on_disk = f.path.read_bytes()
        # While open, a direct file may end in padding of its last block; never anything else.
        assert on_disk[: len(expected)] == expected
        assert on_disk[len(expected) :] == b"\0" * (len(on_disk) - len(expected))
        assert len(on_disk) - len(expected) < BLOCK
    f.close(fsync=True)
    assert f.path.read_bytes() == expected


def test_segments_sharing_a_stage_never_write_another_ones_bytes(tmp_path: Path) -> None:
    # The spool writer keeps one stage for all its segments. Whatever a previous segment left in
    # it (here: 0xff everywhere) must never reach the next one's file, padding included.
    stage = segment.new_stage()
    stage[:] = b"\xff" * STAGE_BYTES
    batches = [lines_of([10, BLOCK + 3]), lines_of([STAGE_BYTES + 77], seed=4), lines_of([5])]
    for n in range(2):
        f = open_segment(tmp_path / f"{n}.jsonl.part", True, stage=stage)
        expected = b""
        for batch in batches[n:]:
            f.append(batch)
            expected += b"".join(batch)
            on_disk = f.path.read_bytes()
            assert on_disk == expected + b"\0" * (len(on_disk) - len(expected))
        f.close(fsync=False)
        assert f.path.read_bytes() == expected
    assert not stage.closed  # a shared stage outlives its segments
    stage.close()


def test_direct_io_off_writes_buffered(tmp_path: Path) -> None:
    f = SegmentFile(tmp_path / "s", direct=False)
    f.append([b"a\n"])
    assert f.path.read_bytes() == b"a\n"  # no padding: the plain file path
    f.close(fsync=False)


def test_a_filesystem_without_direct_io_falls_back_to_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What such a filesystem answers when a file is switched to O_DIRECT (patched on the fcntl
    # module: a compiled sidecar.segment calls its own functions natively, never through the
    # module's attributes).
    real_fcntl = fcntl.fcntl

    def refusing(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)
    f = SegmentFile(tmp_path / "s", direct=True)
    assert not f.direct
    f.append([b"a\n", b"b\n"])
    f.close(fsync=False)
    assert f.path.read_bytes() == b"a\nb\n"


@pytest.mark.parametrize("direct", [True, False])
def test_a_failed_batch_leaves_nothing_and_the_next_one_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    f = open_segment(tmp_path / "s", direct)
    first = lines_of([700, 900])
    f.append(first)
    real_pwrite, real_writev = os.pwrite, os.writev
    calls = {"n": 0}

    def failing(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 2:  # the second write of the batch: part of it is already on disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return (real_pwrite if direct else real_writev)(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "pwrite" if direct else "writev", failing)
    # Direct: a whole stage is written before the failing partial block. Buffered: writev takes
    # 1024 parts per call, so the second call fails after the first landed.
    big = lines_of([STAGE_BYTES + 5000, 10], seed=4) if direct else [b"y" * 10 + b"\n"] * 2000
    with pytest.raises(OSError):
        f.append(big)
    assert f.size == sum(map(len, first))
    assert f.path.read_bytes()[: f.size] == b"".join(first)
    assert set(f.path.read_bytes()[f.size :]) <= {0}
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    monkeypatch.setattr(os, "writev", real_writev)
    last = lines_of([50, 60], seed=5)
    f.append(last)
    f.close(fsync=False)
    assert f.path.read_bytes() == b"".join(first) + b"".join(last)


def test_recover_cuts_direct_padding_without_calling_it_a_torn_line(tmp_path: Path) -> None:
    # What a killed process leaves: whole lines, then the padding of the last block.
    d = tmp_path / "ep" / "v1" / "2023" / "11" / "14" / "23"
    d.mkdir(parents=True)
    f = open_segment(d / f"a{OPEN_SUFFIX}", direct=True)
    f.append([b'{"a":1}\n', b'{"b":2}\n'])
    assert len(f.path.read_bytes()) == BLOCK  # padded
    os.close(f._fd)  # killed: no close(), no truncation
    (d / f"b{OPEN_SUFFIX}").write_bytes(b'{"c":3}\n{"d"' + b"\0" * 100)  # torn, then padding
    metrics = SidecarMetrics(CollectorRegistry())
    assert recover(tmp_path, metrics) == 2
    assert (d / f"a{SEALED_SUFFIX}").read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert (d / f"b{SEALED_SUFFIX}").read_bytes() == b'{"c":3}\n'
    # Only the torn line counts, not the padding.
    assert metrics.registry.get_sample_value("modeltap_sidecar_spool_truncated_lines_total") == 1


def _thp_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else "unknown"


@pytest.mark.skipif(
    _thp_mode() not in ("always", "madvise"), reason="the kernel offers no huge pages on request"
)
def test_the_staging_buffer_can_take_huge_pages() -> None:
    """A direct write pins the stage's pages: a few 2 MiB pages instead of 1,024 small ones per
    4 MiB write group. A shared anonymous map (shmem) is never eligible by default."""
    stage = segment.new_stage()
    try:
        start = ctypes.addressof(ctypes.c_char.from_buffer(stage))
        eligible = None
        mapping = None
        for line in Path("/proc/self/smaps").read_text().splitlines():
            head = line.split(" ", 1)[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                mapping = lo <= start < hi
            elif mapping and line.startswith("THPeligible:"):
                eligible = line.split()[1]
                break
        assert eligible == "1"
    finally:
        stage.close()
