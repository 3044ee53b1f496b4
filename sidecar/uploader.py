"""The uploader: moves sealed spool segments into the store, deleting each only once it is stored.

Each sealed segment ``{spool}/{key}`` becomes the object ``{key}`` (plus ``.gz`` when compressing)
under the destination prefix. The key carries the segment's uuid, so a retried upload overwrites
the same object with the same bytes: a segment never appears twice, and replicas never collide.

Failures are retried with exponential backoff and full jitter for as long as the process runs;
the segment stays on disk meanwhile, so the spool's disk-usage cutoff is the only back-pressure
(capture pauses, serving never does). Each attempt reads the segment afresh and drops its bytes
when it ends: while the store is down, memory holds at most the ``store.max_concurrency``
attempts in flight, not every segment waiting for a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from modeltap.core.errors import StoreError
from modeltap.core.store.base import Store
from modeltap.core.store.local import LocalStore
from modeltap.core.store.s3 import S3Store
from sidecar.config import StoreConfig
from sidecar.metrics import SidecarMetrics
from sidecar.spool import SEALED_SUFFIX, SpoolUsage, iter_segments

log = logging.getLogger(__name__)

_RESCAN_SECONDS = 5.0


def _read_segment(path: Path, compress: bool) -> tuple[bytes, int, int]:
    """Read a segment (and gzip it) in a worker thread; returns (body, raw size, records)."""
    raw = path.read_bytes()
    records = raw.count(b"\n")
    body = gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw
    return body, len(raw), records


def backoff_delay(
    attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return float(rand() * min(cap, base * (2 ** min(attempt, 30))))


class Uploader:
    """Background task: store sealed segments with bounded concurrency, retrying until stored."""

    def __init__(
        self,
        spool_dir: Path,
        store: Store,
        config: StoreConfig,
        metrics: SidecarMetrics,
        usage: SpoolUsage,
    ) -> None:
        self._dir = spool_dir
        self._store = store
        self._cfg = config
        self._metrics = metrics
        self._usage = usage
        self._pending: dict[Path, tuple[float, int]] = {}  # path -> (sealed time, bytes)
        self._in_flight: set[Path] = set()
        self._records: dict[Path, int] = {}  # line counts the writer reported at sealing
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(config.max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._deadline: float | None = None

    # -- discovery ------------------------------------------------------------------------------
    def _forget(self, path: Path) -> None:
        self._pending.pop(path, None)
        self._records.pop(path, None)

    def notify_sealed(self, path: Path, records: int | None = None) -> None:
        """Called on the event loop when the writer sealed a segment of ``records`` lines."""
        if records is not None:
            self._records[path] = records
        with contextlib.suppress(OSError):
            st = path.stat()
            self._pending.setdefault(path, (st.st_mtime, st.st_size))
        self._update_gauges()
        self._wake.set()

    async def rescan(self) -> None:
        """Pick up every sealed segment on disk (after a restart, or missed notifications)."""

        def scan() -> dict[Path, tuple[float, int]]:
            found = {}
            for p in iter_segments(self._dir, SEALED_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    st = p.stat()
                    found[p] = (st.st_mtime, st.st_size)
            return found

        for path, mtime in (await asyncio.to_thread(scan)).items():
            self._pending.setdefault(path, mtime)
        self._update_gauges()
        if self._pending:
            self._wake.set()

    def _update_gauges(self) -> None:
        m = self._metrics
        m.pending_segments.set(len(self._pending))
        m.pending_bytes.set(sum(size for _, size in self._pending.values()))
        oldest = min((t for t, _ in self._pending.values()), default=None)
        m.oldest_pending_age.set(0 if oldest is None else max(0.0, time.time() - oldest))

    # -- main loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Upload until cancelled."""
        await self.rescan()
        last_scan = time.monotonic()
        while not self._closing:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RESCAN_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            if time.monotonic() - last_scan >= _RESCAN_SECONDS:
                await self.rescan()
                last_scan = time.monotonic()
            self._start_uploads()
            self._update_gauges()

    def _start_uploads(self) -> None:
        for path in sorted(self._pending):
            if path in self._in_flight:
                continue
            self._in_flight.add(path)
            task = asyncio.create_task(self._upload(path))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self, grace_seconds: float) -> int:
        """Upload everything pending within ``grace_seconds``; return the segments left on disk."""
        self._closing = True
        self._deadline = time.monotonic() + grace_seconds
        await self.rescan()
        self._start_uploads()
        log.debug(
            "draining %d segment(s), %d upload(s) running", len(self._pending), len(self._tasks)
        )
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        left = sorted(self._pending)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if left:
            log.warning(
                "%d sealed segment(s) not stored before shutdown; they stay in %s for the next start: %s",
                len(left),
                self._dir,
                ", ".join(str(p.relative_to(self._dir)) for p in left[:10]),
            )
        return len(left)

    # -- one segment ---------------------------------------------------------------------------
    def object_key(self, path: Path) -> str:
        key = path.relative_to(self._dir).as_posix()
        return key + ".gz" if self._cfg.gzip else key

    async def _upload(self, path: Path) -> None:
        try:
            async with self._sem:
                await self._upload_with_retries(path)
        finally:
            self._in_flight.discard(path)

    async def _upload_with_retries(self, path: Path) -> None:
        key = self.object_key(path)
        log.debug("storing %s", key)
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                stored = await self._put_once(path, key)
                break
            except StoreError as exc:
                self._metrics.upload_failures.labels(exc.reason).inc()
                if exc.retryable:
                    delay = backoff_delay(
                        attempt, self._cfg.retry_base_seconds, self._cfg.retry_max_seconds
                    )
                else:
                    # Revoked rights or a deleted bucket: nothing but an operator fixes it, and
                    # dropping the segment would lose data, so retry slowly and say so loudly.
                    delay = self._cfg.retry_max_seconds
                # The log gets the message, not the exception: a handler that keeps records
                # would keep the failed attempt (its traceback, the bytes it read) alive.
                why = str(exc)
                if self._deadline is not None and time.monotonic() + delay > self._deadline:
                    log.warning("giving up on %s for now (shutting down): %s", key, why)
                    return
                log.log(
                    logging.WARNING if exc.retryable else logging.ERROR,
                    "storing %s failed (%s), retry %d in %.2fs",
                    key,
                    why,
                    attempt + 1,
                    delay,
                )
                self._metrics.upload_retries.inc()
            # Wait outside the except block: the failed attempt (its traceback, the bytes it
            # read) is gone before the wait, so a segment waiting for a retry is on disk only.
            attempt += 1
            await asyncio.sleep(delay)
        if stored is None:  # the segment is gone from the spool: nothing left to store
            self._forget(path)
            return
        raw_size, body_size, records = stored
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)
        self._forget(path)
        self._usage.add(-raw_size)
        m = self._metrics
        m.upload_objects.inc()
        m.upload_bytes.inc(body_size)
        m.upload_records.inc(records)
        m.upload_duration.observe(time.monotonic() - started)
        self._update_gauges()

    async def _put_once(self, path: Path, key: str) -> tuple[int, int, int] | None:
        """One attempt: (raw bytes, stored bytes, records), or None when the segment is gone.

        Every attempt reads (and gzips) the segment afresh and lets go of the bytes when it
        ends, so the memory the uploader holds is bounded by the uploads in flight
        (``store.max_concurrency``), never by the segments waiting for a retry.
        """
        known = self._records.get(path)
        if (
            known is not None
            and not self._cfg.gzip
            and isinstance(self._store, LocalStore | S3Store)
        ):
            # The file as it is: a local store links it in place, S3 gets it streamed from disk
            # (no read into memory, no copy on the event loop).
            try:
                size = (await asyncio.to_thread(path.stat)).st_size
            except FileNotFoundError:
                return None
            await self._store.put_file(key, path)
            return size, size, known
        try:
            body, raw_size, records = await asyncio.to_thread(_read_segment, path, self._cfg.gzip)
        except FileNotFoundError:
            return None
        await self._store.put(
            key,
            body,
            content_type="application/jsonlines",
            content_encoding="gzip" if self._cfg.gzip else None,
        )
        return raw_size, len(body), records
