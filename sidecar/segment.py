"""One open spool segment file, appended a batch of whole lines at a time.

Direct I/O (``O_DIRECT``) where the filesystem takes it: a batch is staged in a page-aligned
buffer and written from there in whole 4 KiB blocks, so the kernel moves it to the device
without copying it into the page cache first. Measured on the bench/proxy rig, 100 KB bodies at
100% capture and one connection (every record written): 300-334 us of sidecar CPU per request
direct, 431-454 buffered. For 1 KB records it makes no difference. The spool's bytes also stay
out of the page cache. In Kubernetes the page cache is charged to the container's memory, and
these bytes are read back at most once, by the uploader.

The block being filled is written at the end of every batch, padded with NUL bytes, and rewritten
with more lines by the next batch. So, as with buffered writes, a killed process loses only what
was still queued. A segment left open holds its last lines and then padding. Records never contain
a raw NUL byte (JSON escapes it), and :func:`sidecar.spool.recover` cuts the padding off. Closing
truncates the file to its exact size.

Where the filesystem refuses direct I/O, or ``spool.direct_io`` is off, the staged lines go out
with buffered writes.

Records are written into the staging buffer in place (:attr:`SegmentFile.stage`,
:meth:`SegmentFile.stage_to`) and a batch of them goes out with :meth:`SegmentFile.commit`: a
record is built once, where it is written from (buffered segments stage the same way and write
from the buffer with ``write``). :meth:`SegmentFile.append` takes lines as bytes, for records
larger than the buffer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
from pathlib import Path

# Alignment of direct I/O offsets, lengths and buffers (any logical block size divides it).
BLOCK = 4096
# The spool writer commits a write group at 4 MiB (sidecar.spool._WRITE_BYTES); the other half
# leaves room for one more record of up to 4 MiB to be built in place before that.
STAGE_BYTES = 8 << 20
_IOV_MAX = 1024
_ZEROS = bytes(BLOCK)


def _writev_all(fd: int, parts: list[bytes]) -> None:
    """Write every part with as few writev calls as possible (no join copy), handling short writes."""
    i = 0
    while i < len(parts):
        chunk = parts[i : i + _IOV_MAX]
        written = os.writev(fd, chunk)
        total = sum(map(len, chunk))
        if written == total:
            i += len(chunk)
            continue
        # Short write: finish the part it stopped in, then carry on with the rest.
        for part in chunk:
            if written >= len(part):
                written -= len(part)
                i += 1
                continue
            _write_all(fd, memoryview(part)[written:])
            i += 1
            break


def _write_all(fd: int, data: memoryview) -> None:
    """Write all of ``data``, handling short writes.

    The count written is a local before it slices: mypyc (2.4) evaluates a slice's bounds twice
    when it has no slice primitive for the type sliced (memoryview, bytearray), so
    ``data[os.write(fd, data):]`` wrote everything twice where compiled.
    """
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _enable_direct(fd: int) -> bool:
    """Switch an open file to direct I/O; False where its filesystem does not support it."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return True


def new_stage() -> mmap.mmap:
    """A staging buffer (anonymous maps are page-aligned, as direct I/O needs).

    A writer keeps one for all its segments (``SegmentFile(..., stage=)``): a fresh one per
    16 MiB segment cost 256 page faults each time, about 3 per 211 KB record. Transparent huge
    pages where the kernel offers them on request: a direct write then pins a few 2 MiB pages
    instead of hundreds of 4 KiB ones. The map is private: a shared anonymous map is shmem, which
    takes huge pages only where the host's ``shmem_enabled`` says so (``never`` by default).
    """
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    stage = mmap.mmap(-1, STAGE_BYTES, flags=flags) if flags else mmap.mmap(-1, STAGE_BYTES)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        stage.madvise(mmap.MADV_HUGEPAGE)
    return stage


class SegmentFile:
    """An exclusive new file that grows by whole batches of lines; :attr:`size` is what it holds.

    Lines are staged in ``stage`` (from :func:`new_stage`; one of its own when None). A shared
    stage must serve one open segment at a time; it is left open at close.
    """

    def __init__(self, path: Path, direct: bool, stage: mmap.mmap | None = None) -> None:
        self.path = path
        self.size = 0  # bytes of whole lines written
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._own_stage: mmap.mmap | None = None
        self._direct = False
        # stage[:_base] is on disk already (direct: the partial last block), stage[_base:_fill]
        # holds lines staged since the last commit.
        self._base = 0
        self._fill = 0
        self._flushed = 0  # file offset of the first staged byte (direct: a multiple of BLOCK)
        try:
            self._direct = direct and _enable_direct(self._fd)
            if stage is None:
                stage = self._own_stage = new_stage()
            if len(stage) != STAGE_BYTES:
                raise ValueError(f"a staging buffer holds {STAGE_BYTES} bytes")
            self._view = memoryview(stage)
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def direct(self) -> bool:
        """Whether lines go out with direct I/O."""
        return self._direct

    @property
    def stage(self) -> memoryview:
        """The staging buffer: the next line goes at :attr:`staged`."""
        return self._view

    @property
    def staged(self) -> int:
        """Where in :attr:`stage` the next line goes."""
        return self._fill

    @property
    def pending(self) -> int:
        """Bytes of lines staged and not yet written."""
        return self._fill - self._base

    def stage_to(self, end: int) -> None:
        """Take ``stage[staged:end]``, whole lines written there by the caller, as staged."""
        if not self._fill <= end <= STAGE_BYTES:
            raise ValueError(f"staged lines end at {end}, outside {self._fill}..{STAGE_BYTES}")
        self._fill = end

    def discard(self) -> None:
        """Forget the lines staged since the last commit."""
        self._fill = self._base

    def commit(self) -> int:
        """Write the staged lines; returns the bytes added.

        On an error (a full disk) nothing of them stays: the file is cut back to :attr:`size`,
        the staged lines are dropped and the segment can take the next ones.
        """
        n = self._fill - self._base
        if not n:
            return 0
        view = self._view
        if not self._direct:
            try:
                _write_all(self._fd, view[: self._fill])
            except OSError:
                self._cut_back(seek=True)
                raise
            finally:
                self._fill = 0
        else:
            base, flushed = self._base, self._flushed
            tail = bytes(view[:base])  # the partial block already on disk, to put back
            try:
                self._write_partial(view)
            except OSError:
                self._restore(view, tail, base, flushed)
                raise
        self._base = self._fill
        self.size += n
        return n

    def append(self, lines: list[bytes]) -> int:
        """Commit what is staged, then write whole lines after it; returns the bytes added.

        On an error (a full disk) nothing of this batch stays: the file is cut back to
        :attr:`size` and the segment can take the next batch.
        """
        added = self.commit()
        n = sum(map(len, lines))
        if not self._direct:
            try:
                _writev_all(self._fd, lines)
            except OSError:
                self._cut_back(seek=True)
                raise
        else:
            self._append_direct(self._view, lines)
            self._base = self._fill
        self.size += n
        return added + n

    def _append_direct(self, view: memoryview, lines: list[bytes]) -> None:
        fill, flushed = self._fill, self._flushed
        tail = bytes(view[:fill])  # the partial block's lines, to put back after a failure
        try:
            for line in lines:
                end = self._fill + len(line)
                if end < STAGE_BYTES:  # the common case: the line fits, one copy
                    view[self._fill : end] = line
                    self._fill = end
                else:
                    self._stage_line(view, line)
            self._write_partial(view)
        except OSError:
            self._restore(view, tail, fill, flushed)
            raise

    def _stage_line(self, view: memoryview, line: bytes) -> None:
        src = memoryview(line)
        while src:
            n = min(STAGE_BYTES - self._fill, len(src))
            view[self._fill : self._fill + n] = src[:n]
            self._fill += n
            src = src[n:]
            if self._fill == STAGE_BYTES:
                self._pwrite(view, self._flushed)
                self._flushed += STAGE_BYTES
                self._fill = 0

    def _write_partial(self, view: memoryview) -> None:
        """Write the staged bytes, the last partial block padded, in one write: whole blocks
        for good, the partial one moved to the buffer's start to be rewritten next time (a
        direct write costs a VM exit and a wait for the device whatever its size)."""
        fill = self._fill
        whole = fill - fill % BLOCK
        end = whole + BLOCK if whole < fill else whole
        view[fill:end] = _ZEROS[: end - fill]
        self._pwrite(view[:end], self._flushed)
        if whole:
            self._flushed += whole
            rest = fill - whole
            view[:rest] = view[whole:fill]
            self._fill = rest

    def _pwrite(self, data: memoryview, offset: int) -> None:
        while data:
            written = os.pwrite(self._fd, data, offset)
            if written % BLOCK:  # a short direct write leaves no aligned place to go on from
                raise OSError(errno.EIO, f"short direct write to {self.path}")
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            data, offset = data[written:], offset + written

    def _restore(self, view: memoryview, tail: bytes, fill: int, flushed: int) -> None:
        """After a failed direct write: the partial block's lines back in the buffer, the file
        cut back to :attr:`size`."""
        view[:fill] = tail
        self._fill, self._flushed = fill, flushed
        self._cut_back(seek=False)

    def _cut_back(self, seek: bool) -> None:
        """Cut the file back to :attr:`size` after a failed write (best effort: the disk may be
        failing too); ``seek`` puts a buffered file's position there as well."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self.size)
            if seek:
                os.lseek(self._fd, self.size, os.SEEK_SET)

    def close(self, fsync: bool) -> None:
        """Cut the padding off, optionally fsync, and close (always, also when a step fails)."""
        try:
            if self._direct and self.size % BLOCK:
                os.ftruncate(self._fd, self.size)
            if fsync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._view.release()
            if self._own_stage is not None:
                self._own_stage.close()
                self._own_stage = None
