"""The request path: forward every request to the model server and hand sampled pairs to capture.

Forwarding is faithful: method, raw path and query, end-to-end headers and body go up; status,
reason, end-to-end headers and body come back byte for byte (names as the model server spelled
them). Bodies that are not captured are streamed unless they are small; captured bodies (at most
``capture.max_payload_bytes``) are held once, as the bytes that are forwarded anyway. Capture
costs the request one append to the spool writer's queue.

Two routes, one behaviour: the common request (a body of known length that arrived whole with its
head, small enough to hold whatever the sampling decides, an idle model-server connection free)
is sent and answered from protocol callbacks, without a task (:meth:`Proxy.answer_from_callbacks`);
everything else, and whatever that route cannot finish at once (an answer not all arrived or
streamed, a failure before the answer), runs as a coroutine in a task, from where it stands. Both
share the decisions, the answers, the metrics and the capture hand-off.

Event streams (``capture.stream_content_types``: Server-Sent Events, NDJSON) are forwarded chunk
by chunk as they arrive; the copy kept for the record is the same bytes objects (no copy), up to
``capture.max_payload_bytes``, past which the record keeps the stream's first bytes and is marked
truncated. A client that hangs up mid-stream is noticed at the next chunk: the model server's
connection is closed (it stops generating) and the record says ``client_disconnected``.
Exchanges on ``genai.paths`` are handed to the spool writer even when not sampled (marked not to
be recorded), so the gen_ai metrics it derives cover all traffic.

Client-side limits (head size, body size and timeouts, framing) are applied by
:mod:`sidecar.server`, whose :class:`~sidecar.exchange.ClientFailure` this handler answers and
counts; model-server failures become 502/504 with ``X-Modeltap-Error: upstream``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from modeltap.core.record import (
    STREAM_END_CLIENT_GONE,
    STREAM_END_COMPLETE,
    STREAM_END_UPSTREAM_FAILED,
    CaptureItem,
    StreamTiming,
)
from sidecar.config import SidecarConfig
from sidecar.exchange import ClientFailure, ClientGone, Exchange, body_too_large
from sidecar.metrics import SidecarMetrics
from sidecar.sampling import Sampler
from sidecar.spool import SpoolWriter
from sidecar.upstream import (
    ConnectTimeout,
    Disconnected,
    ResponseTimeout,
    ResponseWaiter,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    _Connection,
)

log = logging.getLogger(__name__)

# Bodies up to this size are read whole even when not captured: one write beats a stream of them
# (100 KB forwarded at 110 us of CPU whole, 159 us streamed in bench/proxy). Captured bodies are
# held whole up to capture.max_payload_bytes (6 MiB) anyway, so this adds no new memory bound.
SMALL_BODY_BYTES = 256 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
_CONTENT_TYPE = b"content-type"


_STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def _status_class(status: int) -> str:
    return _STATUS_CLASSES[min(max(status // 100, 1), 5)]


class Proxy:
    """The handler of the proxy port (an aiohttp low-level ``web.Server`` handler)."""

    def __init__(
        self,
        config: SidecarConfig,
        metrics: SidecarMetrics,
        pool: UpstreamPool,
        writer: SpoolWriter | None,
    ) -> None:
        cap = config.capture
        self._pool = pool
        self._writer = writer
        self._capture = cap.enabled and writer is not None and cap.sample_percent > 0
        self._stream_types = frozenset(t.lower() for t in cap.stream_content_types)
        self._genai_paths = frozenset(config.genai.paths if config.genai.enabled else ())
        self._observe = cap.enabled and writer is not None and bool(self._genai_paths)
        self._by_id = cap.sampling == "inference_id"
        self._sampler = Sampler(cap.sample_percent, self._by_id)
        self._cap_input = "Input" in cap.modes
        self._cap_output = "Output" in cap.modes
        self._capture_errors = cap.capture_errors
        self._max_payload = cap.max_payload_bytes
        self._id_header = cap.inference_id_header.lower().encode("latin-1")
        self._model_header = cap.target_model_header.lower().encode("latin-1")
        self._header_names = tuple(dict.fromkeys(h.lower().encode("latin-1") for h in cap.headers))
        self._max_body = config.server.max_body_bytes
        self._metrics = metrics
        self._too_large = metrics.capture_records.labels("too_large")
        self._truncated = metrics.capture_truncated_streams
        self._skipped_disk = metrics.capture_records.labels("skipped_disk")
        self._client_aborts = metrics.client_aborts
        self._upstream_errors = {
            r: metrics.upstream_errors.labels(r)
            for r in ("connect", "connect_timeout", "timeout", "disconnected", "protocol")
        }
        self._rejected = {
            r: metrics.rejected.labels(r)
            for r in ("body_timeout", "body_too_large", "bad_framing", "malformed")
        }
        # The callback route takes bodies held whole whatever the sampling decides.
        self._callback_limit = min(SMALL_BODY_BYTES, self._max_payload, self._max_body)
        # Requests taken by the callback route, and of those, answered from callbacks or handed
        # over to a task (tests assert the route taken; no metric: the outcome is the same).
        self.callback_started = 0
        self.callback_answered = 0
        self.callback_handed_over = 0

    async def handle(self, ex: Exchange) -> None:
        """Answer ``ex`` (the coroutine route: anything :meth:`answer_from_callbacks` declines)."""
        f = _Flight(self, ex)
        try:
            status = await self._forward(f)
        except _UpstreamFailure as upstream_failure:
            status = self._upstream_failed(ex, upstream_failure)
        except ClientFailure as client_failure:  # (one name per type: compiled code checks it)
            status = self._client_failed(ex, client_failure)
        self._count(status, f.started)

    def _upstream_failed(self, ex: Exchange, failure: _UpstreamFailure) -> int:
        self._upstream_errors[failure.reason].inc()
        if ex.started:
            ex.abort()
        else:
            ex.fail_upstream(failure.status, failure.message)
        return failure.status

    def _client_failed(self, ex: Exchange, failure: ClientFailure) -> int:
        self._rejected[failure.reason].inc()
        if ex.started:
            ex.abort()
        else:
            ex.refuse(failure)
        return failure.status

    def _count(self, status: int, started: float) -> None:
        self._metrics.requests.inc(_status_class(status))
        self._metrics.request_duration.observe(time.perf_counter() - started)

    def _sample(self, f: _Flight) -> None:
        """The capture decisions made before the request goes up."""
        ex = f.ex
        inference_id = ex.header(self._id_header) if self._by_id else None
        capture = self._capture and self._sampler.sampled(inference_id)
        if capture and self._writer is not None and self._writer.paused:
            self._skipped_disk.inc()
            capture = False
        f.inference_id = inference_id
        f.capture = capture
        f.observe = self._observe and ex.path in self._genai_paths
        f.cap_in = capture and self._cap_input
        f.wall = time.time()

    # -- the callback route ----------------------------------------------------------------------
    def answer_from_callbacks(self, ex: Exchange) -> bool:
        """Take ``ex`` without a task when it is the common case: a body (if any) of known
        length that arrived whole with its head, small enough to be held whatever the
        sampling decides, and an idle connection to the model server free now. Its request goes
        up from here; the answer is written from the upstream connection's callbacks
        (:meth:`_Flight.upstream_answered`) when it is a whole body of known length that has
        arrived, else the rest runs in a task as on the coroutine route, from where it stands;
        so do failures before the answer (resend, 502/504). False (nothing done): the
        coroutine route, :meth:`handle`, takes it.

        What it saves per request is a task, its first step through the loop's ready queue and
        five coroutine frames resumed through a future (bench/RESULTS.md, bench/proxy).
        """
        if not ex.whole():
            return False
        length = ex.content_length
        if length is not None and length > self._callback_limit:
            return False
        conn = self._pool.take_idle()
        if conn is None:
            return False
        self.callback_started += 1
        try:
            f = _Flight(self, ex)
            self._sample(f)
            data: bytes | None = None
            if ex.has_body:
                data = ex.body_received()
                assert data is not None  # (whole)
                f.in_body = data
            elif f.cap_in:
                f.in_body = b""
            f.data = data
            f.sent = time.perf_counter()
            f.head = self._pool.send_now(conn, ex.method, ex.target, ex.raw_headers, data, f)
        except BaseException:
            self._pool.release(conn)  # (a bug: the connection and its slot are not lost)
            raise
        return True

    def _answered(self, f: _Flight, upstream: UpstreamResponse) -> None:
        """The model server's head (and what came with it) has been parsed: answer now when
        the whole body is here, else continue in a task."""
        ex = f.ex
        try:
            self._response_decisions(f, upstream)
            if not self._answer_now(f, upstream):
                self.callback_handed_over += 1
                ex.continue_in_task(self._answer_in_task(f, upstream))
                return
            upstream.release()
            self._offer(f, upstream)
        except Exception:
            upstream.release()
            ex.crashed()
            return
        self.callback_answered += 1
        self._count(f.status, f.started)
        ex.finish()

    def _failed_early(self, f: _Flight, conn: _Connection, error: UpstreamError) -> None:
        self.callback_handed_over += 1
        f.ex.continue_in_task(self._resend_in_task(f, conn, error))

    async def _resend_in_task(self, f: _Flight, conn: _Connection, error: UpstreamError) -> None:
        try:
            try:
                upstream = await self._pool.resend(conn, error, f.ex.method, f.head, f.data)
            except UpstreamError as exc:
                raise _upstream_failure(exc) from None
            status = await self._answer(f, upstream)
        except _UpstreamFailure as upstream_failure:
            status = self._upstream_failed(f.ex, upstream_failure)
        except ClientFailure as client_failure:
            status = self._client_failed(f.ex, client_failure)
        self._count(status, f.started)

    async def _answer_in_task(self, f: _Flight, upstream: UpstreamResponse) -> None:
        try:
            try:
                await self._answer_later(f, upstream)
            finally:
                upstream.release()
            self._offer(f, upstream)
            status = f.status
        except _UpstreamFailure as upstream_failure:
            status = self._upstream_failed(f.ex, upstream_failure)
        except ClientFailure as client_failure:
            status = self._client_failed(f.ex, client_failure)
        self._count(status, f.started)

    # -- the coroutine route ---------------------------------------------------------------------
    async def _forward(self, f: _Flight) -> int:
        """Forward ``f.ex`` and answer it; returns the status sent."""
        ex = f.ex
        self._sample(f)
        cap_in = f.cap_in

        # -- request body --------------------------------------------------------------------
        length = ex.content_length
        in_body: bytes | None = None
        data: Any = None
        body: _Body | None = None
        if ex.has_body:
            if length is not None and length > self._max_body:
                raise body_too_large(self._max_body)
            limit = self._max_payload if cap_in else SMALL_BODY_BYTES
            if length is not None and length <= limit:
                # A small body has usually arrived with the head: take it without a coroutine.
                in_body = ex.body_received()
                if in_body is None:
                    in_body = await ex.read_body()
                data = in_body
            else:
                if cap_in and length is not None:
                    self._too_large.inc()
                    f.capture = f.cap_in = False
                body = _Body(ex, self._max_payload if f.cap_in else None)
                data = body
        elif cap_in:
            in_body = b""
        f.in_body = in_body
        f.body = body

        f.sent = time.perf_counter()
        try:
            try:
                upstream = await self._pool.request(ex.method, ex.target, ex.raw_headers, data)
            except Exception:
                if body is not None and body.failure is not None:
                    raise body.failure from None  # the client's body failed, not the model
                raise
        except UpstreamError as exc:
            raise _upstream_failure(exc) from None
        return await self._answer(f, upstream)

    async def _answer(self, f: _Flight, upstream: UpstreamResponse) -> int:
        """Answer with the model server's response (and hand the pair to capture)."""
        try:
            self._response_decisions(f, upstream)
            if not self._answer_now(f, upstream):
                await self._answer_later(f, upstream)
        finally:
            upstream.release()
        self._offer(f, upstream)
        return f.status

    def _response_decisions(self, f: _Flight, upstream: UpstreamResponse) -> None:
        """On the response head: the model latency, and what of the pair is kept."""
        f.model_latency = model_latency = time.perf_counter() - f.sent
        self._metrics.upstream_duration.observe(model_latency)
        body = f.body
        if f.cap_in and f.in_body is None and body is not None:
            f.in_body = body.kept()
            if f.in_body is None:
                self._too_large.inc()
                f.capture = False
        status = upstream.status
        f.status = status
        f.capture = capture = f.capture and (200 <= status < 300 or self._capture_errors)
        f.cap_out = capture and self._cap_output
        f.observe = f.observe and 200 <= status < 300
        f.fields = upstream.forwardable()

    def _answer_now(self, f: _Flight, upstream: UpstreamResponse) -> bool:
        """Answer at once when no wait is needed: a response without a body, or one of known
        length within what is held whole that has all arrived. False: nothing done."""
        ex = f.ex
        status = f.status
        if ex.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
            # HEAD and 304 keep the model server's Content-Length; 204 and 1xx have none
            rlen = upstream.content_length
            keep = rlen if status >= 200 and status != 204 else None
            ex.respond(status, upstream.raw_reason, f.fields, b"", keep)
            f.out_body = b"" if f.cap_out else None
            return True
        if not self._held_whole(f, upstream):
            return False
        out_body = upstream.body_received()
        if out_body is None:
            return False
        self._respond_whole(f, upstream, out_body)
        return True

    def _held_whole(self, f: _Flight, upstream: UpstreamResponse) -> bool:
        rlen = upstream.content_length
        keep_out = f.cap_out or f.observe
        return rlen is not None and rlen <= (self._max_payload if keep_out else SMALL_BODY_BYTES)

    def _respond_whole(self, f: _Flight, upstream: UpstreamResponse, out_body: bytes) -> None:
        f.ex.respond(f.status, upstream.raw_reason, f.fields, out_body, len(out_body))
        f.out_body = out_body
        if f.observe:
            done = time.perf_counter() - f.sent
            f.timing = StreamTiming(done, done, 1, len(out_body), STREAM_END_COMPLETE)

    async def _answer_later(self, f: _Flight, upstream: UpstreamResponse) -> None:
        """The answer's body when :meth:`_answer_now` could not answer: read whole, or
        streamed."""
        if self._held_whole(f, upstream):
            self._respond_whole(f, upstream, await _read_whole(upstream))
            return
        ex = f.ex
        cap_out = f.cap_out
        observe = f.observe
        keep_out = cap_out or observe
        rlen = upstream.content_length
        ctype = upstream.header(_CONTENT_TYPE)
        is_stream = (
            ctype is not None and ctype.partition(";")[0].strip().lower() in self._stream_types
        )
        if keep_out and rlen is not None and rlen > self._max_payload and not is_stream:
            if cap_out:
                self._too_large.inc()
            f.capture = f.cap_out = cap_out = keep_out = f.observe = observe = False
        out_body, timing = await self._stream(
            ex, upstream, f.fields, keep_out, is_stream, observe, f.sent
        )
        if timing.truncated and cap_out:
            self._truncated.inc()
        if out_body is None and keep_out:
            if cap_out:
                if timing.end == STREAM_END_COMPLETE:
                    self._too_large.inc()
                f.capture = False
            f.observe = False
        f.out_body = out_body
        f.timing = timing

    def _offer(self, f: _Flight, upstream: UpstreamResponse) -> None:
        """Hand the pair to the spool writer when it is captured or observed. The writer is
        asked first whether it has room: a pair it would shed (counted) is not built."""
        capture = f.capture
        observe = f.observe
        writer = self._writer
        if not (capture or observe) or writer is None:
            return
        cap_in = f.cap_in
        cap_out = f.cap_out
        in_body = f.in_body if cap_in or observe else None
        out_body = f.out_body if cap_out or observe else None
        size = len(in_body) if in_body is not None else 0
        if out_body is not None:
            size += len(out_body)
        now = writer.admit(size, capture, observe)
        if now < 0.0:
            return
        ex = f.ex
        # The request's three fields in one pass (an id sampled on was looked up already; an
        # exchange only observed, not captured, carries none)
        inference_id, target_model, content_type = ex.headers3(
            self._id_header, self._model_header, _CONTENT_TYPE
        )
        if self._by_id or not capture:
            inference_id = f.inference_id
        req_headers = resp_headers = None
        if self._header_names and capture:
            req_headers = ex.headers_named(self._header_names)
            resp_headers = upstream.pick(self._header_names)
        item = CaptureItem(
            inference_time=f.wall,
            method=ex.method,
            path=ex.path,
            status=f.status,
            model_latency_s=f.model_latency,
            inference_id=inference_id,
            target_model=target_model,
            input_body=in_body,
            input_recorded=cap_in,
            input_content_type=content_type,
            output_body=out_body,
            output_recorded=cap_out,
            output_content_type=upstream.header(_CONTENT_TYPE),
            request_headers=req_headers,
            response_headers=resp_headers,
            stream=f.timing,
            genai=observe,
            record=capture,
        )
        writer.put(item, size, now)

    async def _stream(
        self,
        ex: Exchange,
        upstream: UpstreamResponse,
        fields: list[tuple[bytes, bytes]],
        keep: bool,
        is_stream: bool,
        observe: bool,
        sent: float,
    ) -> tuple[bytes | None, StreamTiming]:
        """Stream the upstream body to the client as it arrives; keep a copy up to the capture
        limit (the chunks themselves: nothing forwarded is copied).

        Returns the copy and how the body streamed. The copy is None when not asked for, or over
        the limit for a body that is not an event stream (an event stream keeps its first chunks
        and is marked truncated), or when the body did not reach the client whole and is not an
        event stream. The model server failing mid-body cuts the client's connection (its head
        has gone); the client going away is counted.
        """
        # The first piece has usually arrived with the head: it goes in the head's write.
        pending = upstream.chunk_received()
        if pending is None:
            ex.start(upstream.status, upstream.raw_reason, fields, upstream.content_length)
        kept: list[bytes] | None = [] if keep else None
        ends: list[int] | None = [] if observe else None
        times: list[float] | None = [] if observe else None
        limit = self._max_payload
        size = forwarded = chunks = 0
        first = last = 0.0
        end = STREAM_END_COMPLETE
        truncated = False
        while True:
            chunk: bytes | None
            try:
                if pending is not None:
                    chunk, pending = pending, None
                else:
                    chunk = await upstream.next_chunk()
            except UpstreamError as exc:
                self._upstream_errors["disconnected"].inc()
                log.warning(
                    "model server failed mid-response for %s %s: %s", ex.method, ex.target, exc
                )
                ex.abort()
                end = STREAM_END_UPSTREAM_FAILED
                break
            if chunk is None:
                break
            now = time.perf_counter() - sent
            if not chunks:
                first = now
            last = now
            chunks += 1
            forwarded += len(chunk)
            try:
                if ex.started:
                    await ex.write(chunk)
                else:
                    ex.start(
                        upstream.status, upstream.raw_reason, fields, upstream.content_length, chunk
                    )
                    await ex.drain()
            except ClientGone:
                self._client_gone(ex)
                end = STREAM_END_CLIENT_GONE
                break
            if kept is not None and not truncated:
                if size + len(chunk) > limit:
                    if is_stream:
                        truncated = True
                    else:
                        kept = None
                else:
                    size += len(chunk)
                    kept.append(chunk)
                    if ends is not None and times is not None:
                        ends.append(size)
                        times.append(now)
        if end == STREAM_END_COMPLETE:
            ex.end()
            if ex.client_lost:  # the end never reached the client
                self._client_gone(ex)
                end = STREAM_END_CLIENT_GONE
        timing = StreamTiming(first, last, chunks, forwarded, end, truncated, ends, times)
        if kept is None or (end != STREAM_END_COMPLETE and not is_stream):
            return None, timing
        return b"".join(kept), timing

    def _client_gone(self, ex: Exchange) -> None:
        """The client hung up while its response streamed: count it."""
        self._client_aborts.inc()
        ex.done = True
        log.debug("client went away during %s %s", ex.method, ex.target)


class _Flight(ResponseWaiter):
    """One request's state on its way through the proxy, on either route; on the callback
    route it is also what the upstream connection tells of the answer."""

    def __init__(self, proxy: Proxy, ex: Exchange) -> None:
        self.proxy = proxy
        self.ex = ex
        self.started = time.perf_counter()
        self.wall = 0.0
        self.inference_id: str | None = None
        self.capture = False
        self.cap_in = False
        self.cap_out = False
        self.observe = False
        self.in_body: bytes | None = None
        self.body: _Body | None = None
        self.data: bytes | None = None  # the request body sent, held whole (callback route)
        self.head = b""  # the request head sent (callback route)
        self.sent = 0.0
        self.model_latency = 0.0
        self.status = 0
        self.fields: list[tuple[bytes, bytes]] = []
        self.out_body: bytes | None = None
        self.timing: StreamTiming | None = None

    def upstream_answered(self, conn: _Connection, response: UpstreamResponse) -> None:
        self.proxy._answered(self, response)

    def upstream_failed(self, conn: _Connection, error: UpstreamError) -> None:
        self.proxy._failed_early(self, conn, error)


class _UpstreamFailure(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _upstream_failure(exc: UpstreamError) -> _UpstreamFailure:
    """The answer for a request the model server failed before its response head."""
    status = 504 if isinstance(exc, ConnectTimeout | ResponseTimeout) else 502
    return _UpstreamFailure(status, exc.reason, str(exc))


async def _read_whole(upstream: UpstreamResponse) -> bytes:
    try:
        return await upstream.read()
    except Disconnected as closed:
        raise _UpstreamFailure(
            502, "disconnected", "the model server closed the connection mid-body"
        ) from closed
    except ResponseTimeout as late:
        raise _UpstreamFailure(
            504, "timeout", "the model server did not send its body in time"
        ) from late
    except UpstreamError as exc:
        raise _UpstreamFailure(
            502, "protocol", f"bad response from the model server: {exc}"
        ) from exc


class _Body:
    """A request body forwarded as it arrives, with a copy kept up to ``keep`` bytes.

    The server bounds each wait and the total; a failure is raised into the upstream request and
    remembered in ``failure``, so the handler answers for the client, not the model server.
    """

    def __init__(self, ex: Exchange, keep: int | None) -> None:
        self._ex = ex
        self._keep = keep
        self._chunks: list[bytes] | None = [] if keep is not None else None
        self._size = 0
        self.failure: ClientFailure | None = None

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._ex.next_chunk()
        except ClientFailure as failure:
            self.failure = failure
            raise
        if chunk is None:
            raise StopAsyncIteration
        if self._chunks is not None:
            self._size += len(chunk)
            if self._keep is not None and self._size > self._keep:
                self._chunks = None
            else:
                self._chunks.append(chunk)
        return chunk

    def kept(self) -> bytes | None:
        return b"".join(self._chunks) if self._chunks is not None else None
