"""``POST /ground-truth?endpoint=E&variant=V``: labels pushed to the analyzer over HTTP.

The body is JSON Lines of ground-truth records (:mod:`.records`), at most ``max_body_bytes``
after any ``Content-Encoding`` is undone. A request is all or nothing: if any line is bad the
answer is 400 naming the first bad lines, and nothing is stored.

**Durability over batching.** A request is answered 200 only after its lines are in the store
(``Store.put`` returned): a 200 is never lost by a crash. To keep the object count down,
concurrent requests for the same endpoint/variant share one object: the first opens a batch, and
the batch is written when it holds ``max_batch_records`` records or ``linger_seconds`` after it
opened, or on :meth:`Ingestor.close`. A request is never split across objects, and one failed
put fails every request of its batch (503 with ``Retry-After``; resending is safe, since a
repeated label just wins again).

Objects are ``[{prefix}/]{endpoint}/{variant}/yyyy/mm/dd/hh/MM-SS-mmm-<uuid>.jsonl``, the hour
being when the batch's first request was received (UTC), which is when the labels were collected.

Status codes: 404 when no token is configured (the endpoint is off), 401 with
``WWW-Authenticate`` for a missing or wrong bearer token, 400 for a bad target or bad lines, 413
for a body over the limit, 503 when the store failed or the ingestor is closing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from analyzer.groundtruth.layout import label_key
from analyzer.groundtruth.records import parse_line
from modeltap.core.errors import StoreError
from modeltap.core.store.base import Store

log = logging.getLogger(__name__)

PATH = "/ground-truth"
CONTENT_TYPE = "application/jsonlines"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class IngestConfig:
    """Settings of the ground-truth endpoint; an empty ``token`` turns it off."""

    token: str | None = None
    prefix: str = ""  # key prefix of the objects within the store
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch_records: int = 10_000  # a batch is written when it holds this many records
    linger_seconds: float = 0.1  # ... or this long after its first request
    targets: frozenset[tuple[str, str]] | None = None  # allowed (endpoint, variant); None: any
    max_reported_errors: int = 10  # bad lines named in a 400 answer

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0 or self.max_batch_records <= 0 or self.linger_seconds < 0:
            raise ValueError(
                "max_body_bytes and max_batch_records must be positive, linger_seconds >= 0"
            )


@dataclass
class IngestCounters:
    """Running totals for a Prometheus collector; ``rejected_requests`` is by reason."""

    accepted_requests: int = 0
    accepted_records: int = 0
    objects_written: int = 0
    store_errors: int = 0
    rejected_requests: dict[str, int] = field(default_factory=dict)
    rejected_lines: dict[str, int] = field(default_factory=dict)  # bad lines of 400 answers

    def reject(self, reason: str) -> None:
        self.rejected_requests[reason] = self.rejected_requests.get(reason, 0) + 1


REJECT_REASONS = (
    "disabled", "unauthorized", "bad_target", "unknown_target", "too_large", "empty",
    "invalid_lines", "store_error", "closed",
)  # fmt: skip


class IngestorClosed(RuntimeError):
    """``submit`` after ``close``."""


@dataclass(eq=False)
class _Batch:
    received: dt.datetime
    done: asyncio.Future[str]
    lines: list[bytes] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ingestor:
    """Buffers accepted lines per endpoint/variant and writes each batch as one object."""

    def __init__(
        self,
        store: Store,
        config: IngestConfig | None = None,
        *,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.config = config or IngestConfig()
        self.counters = IngestCounters()
        self._now = now
        self._pending: dict[tuple[str, str], _Batch] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._closed = False

    async def submit(self, endpoint: str, variant: str, lines: list[bytes]) -> str:
        """Store ``lines`` (validated, without line ends); return the object key once stored.

        Raises the store's error when the put failed, IngestorClosed after :meth:`close`.
        """
        if self._closed:
            raise IngestorClosed("the ground-truth ingestor is closed")
        if not lines:
            raise ValueError("nothing to submit")
        target = (endpoint, variant)
        batch = self._pending.get(target)
        if batch is not None and len(batch.lines) + len(lines) > self.config.max_batch_records:
            self._flush(target)  # a request is never split: write the batch before it
            batch = None
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = _Batch(received=self._now(), done=loop.create_future())
            self._pending[target] = batch
            if self.config.linger_seconds > 0:
                batch.timer = loop.call_later(
                    self.config.linger_seconds, self._flush, target, batch
                )
        batch.lines.extend(lines)
        done = batch.done
        if len(batch.lines) >= self.config.max_batch_records or self.config.linger_seconds == 0:
            self._flush(target)
        # shield: a request cancelled while waiting must not cancel its batch-mates' future.
        return await asyncio.shield(done)

    def _flush(self, target: tuple[str, str], expected: _Batch | None = None) -> None:
        batch = self._pending.get(target)
        if batch is None or (expected is not None and batch is not expected):
            return
        del self._pending[target]
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._write(target, batch))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, target: tuple[str, str], batch: _Batch) -> None:
        key = label_key(*target, batch.received, self.config.prefix)
        body = b"".join(line + b"\n" for line in batch.lines)
        try:
            await self.store.put(key, body, content_type=CONTENT_TYPE)
        except Exception as exc:
            self.counters.store_errors += 1
            log.error("storing ground truth %s failed: %s", key, exc)
            batch.done.set_exception(exc)
            batch.done.exception()  # retrieved: every waiter may have gone
            return
        self.counters.objects_written += 1
        self.counters.accepted_records += len(batch.lines)
        batch.done.set_result(key)

    async def close(self) -> None:
        """Write every open batch and wait for all writes; later submits raise IngestorClosed."""
        self._closed = True
        for target in list(self._pending):
            self._flush(target)
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds ``limit`` (read in chunks: never more than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    buf = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def make_ground_truth_handler(ingestor: Ingestor) -> Handler:
    """The ``POST /ground-truth`` handler; its settings are ``ingestor.config``."""
    cfg = ingestor.config
    counters = ingestor.counters

    async def handle(request: web.Request) -> web.Response:
        if not cfg.token:
            counters.reject("disabled")
            return _error(404, "ground-truth ingestion is disabled (no token configured)")
        if not _authorized(request.headers.get("Authorization"), cfg.token):
            counters.reject("unauthorized")
            resp = _error(401, "missing or wrong bearer token")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="modeltap"'
            return resp
        endpoint = request.query.get("endpoint", "")
        variant = request.query.get("variant", "")
        if not (_NAME.fullmatch(endpoint) and _NAME.fullmatch(variant)):
            counters.reject("bad_target")
            return _error(400, "query parameters endpoint and variant are required: letters, "
                               "digits, '.', '_' and '-', at most 128")  # fmt: skip
        if cfg.targets is not None and (endpoint, variant) not in cfg.targets:
            counters.reject("unknown_target")
            return _error(400, f"endpoint {endpoint!r} variant {variant!r} is not monitored")
        body = await _read_body(request, cfg.max_body_bytes)
        if body is None:
            counters.reject("too_large")
            return _error(413, f"body larger than {cfg.max_body_bytes} bytes")
        lines: list[bytes] = []
        bad: list[dict[str, Any]] = []
        n_bad = 0
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            found = parse_line(line)
            if isinstance(found, str):
                n_bad += 1
                counters.rejected_lines[found] = counters.rejected_lines.get(found, 0) + 1
                if len(bad) < cfg.max_reported_errors:
                    bad.append({"line": number, "reason": found})
            else:
                lines.append(line)
        if n_bad:
            counters.reject("invalid_lines")
            return _error(
                400, f"{n_bad} of {n_bad + len(lines)} lines are not ground-truth records; "
                     "nothing was stored", bad_lines=n_bad, lines=bad)  # fmt: skip
        if not lines:
            counters.reject("empty")
            return _error(400, "the body holds no ground-truth records")
        try:
            key = await ingestor.submit(endpoint, variant, lines)
        except (StoreError, IngestorClosed) as exc:
            counters.reject("closed" if isinstance(exc, IngestorClosed) else "store_error")
            resp = _error(503, f"labels not stored, retry: {exc}")
            resp.headers["Retry-After"] = "5"
            return resp
        counters.accepted_requests += 1
        return web.json_response({"accepted": len(lines), "key": key})

    return handle


def add_ground_truth_route(app: web.Application, ingestor: Ingestor, path: str = PATH) -> None:
    """Register ``POST path`` and close (flush) the ingestor when the app cleans up."""
    app.router.add_post(path, make_ground_truth_handler(ingestor))

    async def close(_app: web.Application) -> None:
        await ingestor.close()

    app.on_cleanup.append(close)
