"""The spool writer: a thread that turns queued capture items into segment files on local disk.

The request path calls :meth:`SpoolWriter.offer`, a non-blocking append to a deque; everything
else (serialization, disk-usage checks, writes, sealing) happens on the writer's own thread, so the
event loop never waits on a disk.

Layout: ``{spool}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM-SS-mmm}-{uuid}.jsonl.part`` while a segment
is open; sealing fsyncs it and renames it to ``.jsonl``, which is the signal for the uploader. The
path below the spool directory is the object key below the store prefix. A segment holds records
of one UTC hour only, so its key's hour is the hour of every record in it.

Durability: every batch is written as soon as it is taken off the queue (:mod:`sidecar.segment`,
direct I/O where the filesystem takes it), so a killed process loses only the records not yet
written: the queue and the batch being written. :meth:`SpoolWriter.offer` drops (and counts) a
record while the oldest of those was queued more than ``capture.queue_max_age_seconds`` ago, so
all of them were queued within that span, however starved of CPU the writer is. A torn last line,
and the padding of a direct write's last block, are cut off at the next start (:func:`recover`).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from modeltap.core.errors import ConfigError, RedactionError
from modeltap.core.jsonesc import NOGIL_BYTES as _NOGIL
from modeltap.core.record import (
    CaptureItem,
    PayloadEncoder,
    encode_record,
    encode_record_into,
    new_event_ids,
)
from sidecar.config import CaptureConfig, SpoolConfig
from sidecar.genai import GenAIReader
from sidecar.metrics import SidecarMetrics
from sidecar.redact import Redactor
from sidecar.segment import SegmentFile, new_stage

log = logging.getLogger(__name__)

OPEN_SUFFIX = ".jsonl.part"
SEALED_SUFFIX = ".jsonl"
_MAX_BATCH: Final = 2048
# Payload bytes the writer takes off the queue at once. Taken bytes leave the queue's byte budget
# (capture.queue_max_bytes), so this bounds what is held beyond it. Without it, a writer behind a
# full 256 MiB queue took all of it as one batch while the request path refilled the queue: the
# process held twice the budget (RSS 586 MB in bench/proxy at 100 KB, 100% capture).
_BATCH_BYTES = 4 << 20
# The writer waits this long for _COALESCE_BYTES of payload to queue up before it takes what
# there is: each batch costs a wake-up, GIL hand-offs, a disk check and a direct write of the
# partial last block, whatever its size. At 1 KB and about 20k requests/s, 5 ms made batches of
# about 100 records; 20 ms makes them about 400. Never more than a quarter of
# capture.queue_max_age_seconds, which bounds how long a record waits to be written.
_COALESCE_SECONDS = 0.02
_COALESCE_BYTES = 1 << 20
# Staged record bytes written at once (a batch's records are staged and written at its end or
# when this much is staged): each write costs a direct write's fixed kernel and device work (a
# VM exit, a wait for completion) and rewrites the partial last block. Records built in place
# (no bytes objects per record), 4 MiB groups cost the writer 72-81 us per 211 KB record against
# 80-94 us for 1 MiB groups (writer_alone.py); sidecar.segment's staging buffer has room for it.
_WRITE_BYTES: Final = 4 << 20
# The writer holds the GIL while it builds records (compiled code never offers it up; only the
# escaping of payloads of 16 KiB and more runs without it, modeltap.core.jsonesc), and a request
# that arrives meanwhile waits for it: up to a whole write group (about 3 ms of 1 KB records).
# Offering it every 64 KiB of records bounds the wait to about one large record. Event ids are
# made in small runs for the same reason: 2,048 took 0.6 ms.
_YIELD_BYTES: Final = 64 << 10
_IDS_AT_ONCE: Final = 64
_NO_ROOM: Final = -1  # a record that does not fit in the staging buffer's room
_DROPPED: Final = -2  # a record that could not be redacted


def _yield_gil() -> None:
    """Release the GIL for a moment, so the event loop, if it is waiting for it, can take it.

    ``time.sleep(0)`` releases it around a syscall; the waiting loop thread is woken and, at a
    higher priority (``spool.writer_nice``), usually runs first. ``os.sched_yield`` would also
    give away the rest of the writer's turn on the CPU: at 1 KB and 64 connections (dev rig) it
    cut the records written from about 0.8 per request to 0.2, where this keeps about 0.6.
    """
    time.sleep(0)


def prepare_spool_dir(path: Path) -> None:
    """Create the spool directory and prove it writable; ConfigError (one line) when it is not.

    Blocking: run it before serving or in a thread.
    """
    probe = path / f".modeltap-write-check-{uuid.uuid4()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(probe) else ""
        raise ConfigError(f"spool.dir={str(path)!r} cannot be used: {why}{where}") from None


def disk_usage_ratio(path: Path) -> float:
    """Used fraction of the filesystem holding ``path``, the way ``df`` reports Use%."""
    st = os.statvfs(path)
    used = st.f_blocks - st.f_bfree
    total = used + st.f_bavail
    return used / total if total else 1.0


class SpoolUsage:
    """Bytes of segments on disk, kept by the writer (adds) and the uploader (removes)."""

    def __init__(self, gauge_set: Callable[[float], None]) -> None:
        self._lock = threading.Lock()
        self._bytes = 0
        self._set = gauge_set

    def add(self, n: int) -> None:
        with self._lock:
            self._bytes += n
            self._set(self._bytes)

    @property
    def bytes(self) -> int:
        return self._bytes


@dataclass
class _Segment:
    file: SegmentFile
    hour: int  # epoch hour of every record in it
    opened: float  # monotonic time of the first record
    records: int = 0  # written
    staged: int = 0  # in the staging buffer, not yet written


# Native statics where compiled (a module global is a dict look-up per use, per record here).
NOGIL_BYTES: Final = _NOGIL


def _held_bytes(item: CaptureItem, size: int) -> int:
    """About the bytes of a record built holding the GIL: payloads of jsonesc.NOGIL_BYTES and
    more were escaped without it, which offered it to the event loop already (what escaping
    added to them still counts). Offering it again after
    every 64 KiB of 100 KB records cost the writer about a fifth more CPU per record under
    load (GIL hand-offs), for no shorter wait of the loop."""
    if NOGIL_BYTES and size >= NOGIL_BYTES:
        for body in (item.input_body, item.output_body):
            if body is not None and len(body) >= NOGIL_BYTES:
                size -= len(body)
    return max(size, 0)


def _epoch_hour(epoch_seconds: float) -> int:
    """``int(epoch_seconds // 3600)``, without float floor division (an fmod per record)."""
    second = int(epoch_seconds)
    if second > epoch_seconds:
        second -= 1
    return second // 3600


def _payload_bytes(item: CaptureItem) -> int:
    return len(item.input_body or b"") + len(item.output_body or b"")


def iter_segments(spool_dir: Path, suffix: str) -> Iterator[Path]:
    """Every segment file under the spool directory with the given suffix."""
    yield from sorted(p for p in spool_dir.rglob(f"*{suffix}") if p.is_file())


def recover(spool_dir: Path, metrics: SidecarMetrics, usage: SpoolUsage | None = None) -> int:
    """Seal segments left open by a crash, cutting a torn last line. Returns segments sealed.

    Blocking: run it before serving or in a thread.
    """
    sealed = 0
    for part in iter_segments(spool_dir, OPEN_SUFFIX):
        data = part.read_bytes()
        end = len(data.rstrip(b"\0"))  # direct I/O pads the last block with NULs (sidecar.segment)
        keep = data.rfind(b"\n", 0, end) + 1
        if keep < end:
            metrics.spool_recovered.inc()
            log.warning("dropped a torn last line (%d bytes) from %s", end - keep, part)
        if keep < len(data):
            with open(part, "r+b") as fh:
                fh.truncate(keep)
                os.fsync(fh.fileno())
        if keep == 0:
            part.unlink()
            continue
        part.rename(part.with_name(part.name.removesuffix(OPEN_SUFFIX) + SEALED_SUFFIX))
        sealed += 1
    if usage is not None:
        usage.add(sum(p.stat().st_size for p in iter_segments(spool_dir, SEALED_SUFFIX)))
    return sealed


class SpoolWriter:
    """Owns the capture queue and the open segment; runs on a dedicated thread."""

    def __init__(
        self,
        spool: SpoolConfig,
        capture: CaptureConfig,
        metrics: SidecarMetrics,
        usage: SpoolUsage,
        *,
        on_sealed: Callable[[Path, int], None] = lambda _p, _n: None,
        disk_usage: Callable[[Path], float] = disk_usage_ratio,
        redactor: Redactor | None = None,
        genai: GenAIReader | None = None,
    ) -> None:
        self._cfg = spool
        self._genai = genai
        self._redactor = redactor
        self._redaction_warned = False
        self._prefix = Path(capture.endpoint_name) / capture.variant_name
        self._encoder = PayloadEncoder(
            capture.csv_content_types, capture.json_content_types, capture.stream_content_types
        )
        self._metrics = metrics
        self._usage = usage
        self._on_sealed = on_sealed
        self._disk_usage = disk_usage
        # The queue is a plain deque (append and popleft are atomic under the GIL; the bound is
        # enforced by offer()). The writer polls it while records keep coming and sleeps on _wake
        # only when it found it empty (_idle): the request path wakes it once per idle spell, not
        # once per record, so the two threads hand the GIL to each other less often.
        self._items: deque[CaptureItem] = deque()
        self._idle = False
        self._wake = threading.Lock()
        self._wake.acquire()  # held while nothing is queued; released to wake the writer
        self._max_queue = capture.queue_size
        self._max_bytes = capture.queue_max_bytes
        self._added = 0  # payload bytes ever queued (request path)
        self._removed = 0  # payload bytes ever taken (writer thread)
        # The SIGKILL bound: when each record not yet written was queued, by its sequence
        # number. Records not yet written are the queue plus the batch being written, at most
        # queue_size + _MAX_BATCH, so a ring of that size never overwrites one still needed.
        self._max_age = capture.queue_max_age_seconds
        self._coalesce = min(_COALESCE_SECONDS, self._max_age / 4)
        self._ring = capture.queue_size + _MAX_BATCH + 1
        self._queued_at: list[float] = [0.0] * self._ring
        self._offered = 0  # records ever queued (request path)
        self._done = 0  # records ever taken and finished with (writer thread)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None  # (not _thread: a name mypyc's C cannot use)
        self._segment: _Segment | None = None
        self._stage: mmap.mmap | None = None  # direct I/O's staging buffer, shared by segments
        self._cutoff = spool.max_disk_usage_percent / 100.0
        # The byte budget: a record is written only if the segments stay within it. Capture
        # pauses when one does not fit and resumes below _resume_bytes (no flapping per upload).
        self._budget = spool.max_bytes
        self._resume_bytes = spool.max_bytes * 9 // 10
        self._over_budget = False
        self._disk_full = False
        self._ratio = 0.0  # the spool disk's used fraction at the last check
        self.paused = False
        metrics.spool_max_bytes.set(spool.max_bytes)
        metrics.queue_depth.set_function(self._items.__len__)
        metrics.queue_oldest_age.set_function(self.oldest_age)
        self._dropped_full = metrics.capture_records.labels("dropped_queue_full")
        self._outcome = {
            o: metrics.capture_records.labels(o)
            for o in (
                "spooled",
                "dropped_queue_full",
                "skipped_disk",
                "write_error",
                "dropped_redaction_failed",
            )
        }

    # -- request path -------------------------------------------------------------------------
    def offer(self, item: CaptureItem) -> None:
        """Hand an item to the writer without waiting; a full queue drops it (counted).

        Full means: queue_size records, queue_max_bytes of payload, or its oldest record not
        yet written queued more than queue_max_age_seconds ago. The last bounds what a SIGKILL
        loses: every record not yet written was queued within that span of the oldest one.
        """
        size = _payload_bytes(item)
        now = self.admit(size, item.record, item.genai)
        if now >= 0.0:
            self.put(item, size, now)

    def admit(self, size: int, record: bool, genai: bool) -> float:
        """:meth:`offer`'s first half, before the item is built: whether an item of ``size``
        payload bytes would be queued now. Returns the time to :meth:`put` it with, or -1.0
        when the queue is full and it is dropped (counted as :meth:`offer` counts it). A
        saturated writer sheds most items, and the request path builds none of those."""
        now = time.monotonic()
        # Each counter has one writer (this thread adds, the writer thread removes): no lock needed.
        done = self._done  # read once: the slot of record `done` stays valid while it is unwritten
        if (
            len(self._items) >= self._max_queue
            or self._added - self._removed + size > self._max_bytes
            or (done != self._offered and now - self._queued_at[done % self._ring] > self._max_age)
        ):
            # An exchange queued for the gen_ai metrics only is no capture: it has its own count.
            if record:
                self._dropped_full.inc()
            if genai and self._genai is not None:
                self._genai.count_dropped()
            return -1.0
        return now

    def put(self, item: CaptureItem, size: int, now: float) -> None:
        """Queue an item :meth:`admit` let in (``size`` and ``now`` as given to and by it),
        with nothing in between on this thread."""
        self._added += size
        self._queued_at[self._offered % self._ring] = now
        self._offered += 1
        self._items.append(item)
        if self._idle:
            self._idle = False
            self._wake_writer()

    def _wake_writer(self) -> None:
        with contextlib.suppress(RuntimeError):  # already released: the writer will not wait
            self._wake.release()

    def oldest_age(self) -> float:
        """Seconds since the oldest record not yet written was queued (0 when none)."""
        done = self._done
        if done == self._offered:
            return 0.0
        return max(0.0, time.monotonic() - self._queued_at[done % self._ring])

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._cfg.dir.mkdir(parents=True, exist_ok=True)
        self._check_disk()
        self._worker = threading.Thread(target=self._run, name="modeltap-spool", daemon=True)
        self._worker.start()

    def stop(self, timeout: float | None = None) -> None:
        """Write what is queued, seal the open segment and stop the thread (blocking)."""
        self._stop.set()
        self._wake_writer()
        if self._worker is not None:
            self._worker.join(timeout)

    # -- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        self._lower_priority()
        tick = min(self._cfg.flush_interval_seconds, 1.0)
        while True:
            batch = self._take(tick)
            if batch:
                if self._check_disk():
                    self._write(batch)
                else:
                    self._skip(batch, "skipped_disk")
                self._done += len(batch)
            elif self.paused:
                self._check_disk()
            self._seal_if_old()
            if self._stop.is_set() and not self._items:
                break
        self._seal()
        if self._stage is not None:
            self._stage.close()
            self._stage = None

    def _lower_priority(self) -> None:
        """Give this thread (Linux: a thread's own niceness) less CPU than the event loop's.

        Capture must never slow serving: on a saturated core an equal share let the writer take
        about 45% of the CPU from the loop with 100 KB payloads, halving the requests served. A
        niceness of 10 leaves it about a tenth of the CPU when the loop wants all of it, and all
        the idle time otherwise. What it cannot write in time is dropped and counted.
        """
        nice = self._cfg.writer_nice
        if not nice or not sys.platform.startswith("linux"):
            return
        tid = threading.get_native_id()
        try:
            os.setpriority(
                os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice)
            )
        except OSError as exc:
            log.warning("cannot lower the spool writer's priority (spool.writer_nice): %s", exc)

    def _take(self, timeout: float) -> list[CaptureItem]:
        items = self._items
        if not items:
            self._idle = True  # published before the second look: an offer after it wakes us
            if not items and not self._stop.is_set():
                self._wake.acquire(timeout=timeout)
            self._idle = False
            if not items:
                return []
        if self._added - self._removed < _COALESCE_BYTES and not self._stop.is_set():
            # A moment's wait turns many wake-ups of a few records into one of many.
            time.sleep(self._coalesce)
        batch = [items.popleft()]
        size = _payload_bytes(batch[0])
        while items and len(batch) < _MAX_BATCH and size < _BATCH_BYTES:
            item = items.popleft()
            batch.append(item)
            size += _payload_bytes(item)
        self._removed += size
        return batch

    def _skip(self, items: list[CaptureItem], outcome: str) -> None:
        """Items not written (``outcome`` says why): their gen_ai metrics are still read, which
        needs no disk; only records count under ``outcome``."""
        records = 0
        for it in items:
            if it.genai and self._genai is not None:
                self._genai.read_safely(it)
            if it.record:
                records += 1
        if records:
            self._outcome[outcome].inc(records)

    def _check_disk(self) -> bool:
        """Refresh the pause flag from the spool disk's usage and the spool's byte budget; True
        when capture may write."""
        try:
            ratio = self._disk_usage(self._cfg.dir)
        except OSError as exc:
            log.error("cannot read disk usage of %s: %s", self._cfg.dir, exc)
            ratio = 1.0
        self._metrics.disk_usage.set(ratio)
        self._ratio = ratio
        self._disk_full = ratio >= self._cutoff
        if self._budget:
            used = self._usage.bytes
            if used >= self._budget:
                self._over_budget = True
            elif used <= self._resume_bytes:
                self._over_budget = False
        self._update_paused(ratio)
        return not self.paused

    def _update_paused(self, ratio: float) -> None:
        paused = self._disk_full or self._over_budget
        if paused == self.paused:
            return
        if not paused:
            log.info(
                "spool disk %.1f%% full, spool %d bytes: capture resumed",
                ratio * 100,
                self._usage.bytes,
            )
        elif self._disk_full:
            log.warning(
                "spool disk %.1f%% full (cutoff %.1f%%): capture stopped, serving goes on",
                ratio * 100,
                self._cutoff * 100,
            )
        else:
            log.warning(
                "spool at its byte budget (%d of spool.max_bytes=%d): capture stopped, serving "
                "goes on; it resumes below %d bytes",
                self._usage.bytes,
                self._budget,
                self._resume_bytes,
            )
        self.paused = paused
        self._metrics.capture_paused.set(1 if paused else 0)

    def _write(self, batch: list[CaptureItem]) -> None:
        start = 0
        while start < len(batch):
            hour = _epoch_hour(batch[start].inference_time)
            end = start + 1
            while end < len(batch) and _epoch_hour(batch[end].inference_time) == hour:
                end += 1
            if not self._write_hour(batch[start:end], hour):  # the byte budget is reached
                self._skip(batch[end:], "skipped_disk")
                return
            start = end

    def _budget_reached(self, pending: int) -> bool:
        """Whether ``pending`` more bytes would take the segments past spool.max_bytes."""
        if not self._budget or self._usage.bytes + pending <= self._budget:
            return False
        self._over_budget = True
        self._update_paused(self._ratio)
        return True

    def _write_hour(self, items: list[CaptureItem], hour: int) -> bool:
        """Write the items of one hour; False when the byte budget stopped it (the rest counted).

        Each record is built in place in the open segment's staging buffer
        (:func:`~modeltap.core.record.encode_record_into`: no record bytes are made and copied)
        and the staged records go out at the batch's end or every _WRITE_BYTES.
        """
        seg = self._segment
        if seg is not None and seg.hour != hour:
            self._seal()
        unyielded = 0
        event_ids: list[str] = []
        for i, it in enumerate(items):
            if not event_ids:
                event_ids = new_event_ids(min(len(items) - i, _IDS_AT_ONCE))
            event_id = event_ids.pop()
            if it.genai and self._genai is not None:
                it.genai_fields = self._genai.read_safely(it)
            if not it.record:
                continue
            seg = self._segment_for(it.inference_time, hour)
            end = _NO_ROOM
            if seg is not None:
                end = self._encode_into(it, event_id, seg.file.stage, seg.file.staged)
                if end == _NO_ROOM and seg.file.pending:
                    # The group so far goes out and the record is built again after it.
                    self._commit(seg)
                    seg = self._segment_for(it.inference_time, hour)
                    if seg is not None:
                        end = self._encode_into(it, event_id, seg.file.stage, seg.file.staged)
            if seg is None:  # no segment could be opened (logged)
                self._outcome["write_error"].inc()
                self._skip(items[i + 1 :], "write_error")
                return True
            file = seg.file
            start = file.staged
            if end == _DROPPED:
                continue
            line: bytes | None = None
            if end == _NO_ROOM:  # larger than the staging buffer: built as bytes
                line = self._encode(it, event_id)
                if line is None:
                    continue
            size = len(line) if line is not None else end - start
            if self._budget_reached(file.pending + size):
                self._commit(seg)  # what is staged before this record
                self._outcome["skipped_disk"].inc()  # this one (its gen_ai fields are read)
                self._skip(items[i + 1 :], "skipped_disk")
                return False
            if line is not None:
                self._commit(seg)
                self._append(seg, [line])
            else:
                file.stage_to(end)
                seg.staged += 1
                if file.pending >= _WRITE_BYTES:
                    self._commit(seg)
            unyielded += _held_bytes(it, size)
            if unyielded >= _YIELD_BYTES:
                unyielded = 0
                _yield_gil()
        seg = self._segment
        if seg is not None:
            self._commit(seg)
        return True

    def _segment_for(self, first_time: float, hour: int) -> _Segment | None:
        """The open segment, a new one when there is none or the open one is full; None when
        none could be opened (logged)."""
        seg = self._segment
        if seg is not None and seg.file.size + seg.file.pending >= self._cfg.max_segment_bytes:
            self._commit(seg)
            self._seal()
            seg = None
        if seg is None:
            try:
                seg = self._open(first_time, hour)
            except OSError as exc:
                log.error("cannot open a spool segment in %s: %s", self._cfg.dir, exc)
                return None
        return seg

    def _encode_into(self, it: CaptureItem, event_id: str, dst: memoryview, pos: int) -> int:
        """Build one record in ``dst`` from ``pos``; the offset after it, _NO_ROOM when it does
        not fit, _DROPPED when redaction failed (the record is dropped, never written)."""
        try:
            end = encode_record_into(it, self._encoder, event_id, dst, pos, self._redactor)
        except RedactionError as exc:
            self._redaction_failed(it, exc)
            return _DROPPED
        return _NO_ROOM if end < 0 else end

    def _encode(self, it: CaptureItem, event_id: str) -> bytes | None:
        """One record as bytes; None when redaction fails (the record is dropped)."""
        try:
            return encode_record(it, self._encoder, event_id, self._redactor)
        except RedactionError as exc:
            self._redaction_failed(it, exc)
            return None

    def _redaction_failed(self, it: CaptureItem, exc: RedactionError) -> None:
        self._outcome["dropped_redaction_failed"].inc()
        if not self._redaction_warned:  # once: a misconfigured rule would flood the log
            self._redaction_warned = True
            log.warning(
                "dropped a record of %s %s that could not be redacted (%s); "
                "further drops are only counted",
                it.method,
                it.path,
                exc,
            )

    def _commit(self, seg: _Segment) -> None:
        """Write the records staged in the segment (a failure drops them, counted)."""
        records, seg.staged = seg.staged, 0
        try:
            size = seg.file.commit()  # on failure it leaves no torn line behind
        except OSError as exc:
            log.error("spool write to %s failed: %s", seg.file.path, exc)
            self._outcome["write_error"].inc(records)
            return
        if records:
            seg.records += records
            self._usage.add(size)
            self._outcome["spooled"].inc(records)
        if seg.file.size >= self._cfg.max_segment_bytes:
            self._seal()

    def _append(self, seg: _Segment, lines: list[bytes]) -> None:
        try:
            size = seg.file.append(lines)  # on failure it leaves no torn line behind
        except OSError as exc:
            log.error("spool write to %s failed: %s", seg.file.path, exc)
            self._outcome["write_error"].inc(len(lines))
            return
        seg.records += len(lines)
        self._usage.add(size)
        self._outcome["spooled"].inc(len(lines))
        if seg.file.size >= self._cfg.max_segment_bytes:
            self._seal()

    def _open(self, first_time: float, hour: int) -> _Segment:
        t = time.gmtime(first_time)
        millis = int((first_time % 1) * 1000)
        directory = self._cfg.dir / self._prefix / time.strftime("%Y/%m/%d/%H", t)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{t.tm_min:02d}-{t.tm_sec:02d}-{millis:03d}-{uuid.uuid4()}{OPEN_SUFFIX}"
        path = directory / name
        if self._stage is None:
            self._stage = new_stage()
        file = SegmentFile(path, direct=self._cfg.direct_io, stage=self._stage)
        self._segment = _Segment(file=file, hour=hour, opened=time.monotonic())
        return self._segment

    def _seal_if_old(self) -> None:
        seg = self._segment
        if seg is not None and time.monotonic() - seg.opened >= self._cfg.max_segment_age_seconds:
            self._seal()

    def _seal(self) -> None:
        seg, self._segment = self._segment, None
        if seg is None:
            return
        path = seg.file.path
        try:
            seg.file.close(fsync=self._cfg.fsync)
            if seg.file.size == 0:
                path.unlink()
                return
            sealed = path.with_name(path.name.removesuffix(OPEN_SUFFIX) + SEALED_SUFFIX)
            path.rename(sealed)
            if self._cfg.fsync:
                dir_fd = os.open(sealed.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            # The .part file stays; the next start's recovery seals it.
            log.error("sealing %s failed: %s", path, exc)
            return
        self._metrics.segments_sealed.inc()
        self._on_sealed(sealed, seg.records)
