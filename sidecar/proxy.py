"""The request path: forward every request to the model server and hand sampled pairs to capture.

Forwarding is faithful: method, raw path and query, end-to-end headers and body go up; status,
reason, end-to-end headers and body come back byte for byte. Bodies that are not captured are
streamed unless they are small; captured bodies (at most ``capture.max_payload_bytes``) are held
once, as the bytes that are forwarded anyway. Capture costs the request one ``put_nowait``.

Request limits applied here (the connection-level ones are in :mod:`sidecar.server`): a body over
``server.max_body_bytes`` is refused with 413 (by its Content-Length up front, or counted as it
streams); a body that stalls longer than ``server.body_read_timeout_seconds`` between two reads
gets 408; a Transfer-Encoding other than exactly ``chunked``, or any on an HTTP/1.0 request
(RFC 9112 section 6.1), gets 400. Each closes the connection, since the rest of its body is unread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy

from sidecar.config import SidecarConfig
from sidecar.headers import end_to_end
from sidecar.metrics import SidecarMetrics
from sidecar.record import CaptureItem
from sidecar.sampling import Sampler
from sidecar.server import GuardedConnection, client_error
from sidecar.spool import SpoolWriter
from sidecar.upstream import (
    ConnectTimeout,
    Disconnected,
    ResponseTimeout,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
)

log = logging.getLogger(__name__)

# Bodies up to this size are read whole even when not captured: one write beats a stream of them.
SMALL_BODY_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


def _status_class(status: int) -> str:
    return f"{min(max(status // 100, 1), 5)}xx"


def _error_response(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=f"modeltap sidecar: {message}\n",
        headers={"X-Modeltap-Error": "upstream"},
    )


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
        self._sampler = Sampler(cap.sample_percent, cap.sampling == "inference_id")
        self._cap_input = "Input" in cap.modes
        self._cap_output = "Output" in cap.modes
        self._capture_errors = cap.capture_errors
        self._max_payload = cap.max_payload_bytes
        self._id_header = cap.inference_id_header
        self._model_header = cap.target_model_header
        self._header_names = tuple(dict.fromkeys(h.lower() for h in cap.headers))
        self._max_body = config.server.max_body_bytes
        self._body_timeout = config.server.body_read_timeout_seconds
        self._metrics = metrics
        self._requests = {
            c: metrics.requests.labels(c) for c in ("1xx", "2xx", "3xx", "4xx", "5xx")
        }
        self._too_large = metrics.capture_records.labels("too_large")
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

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await self._forward(request, started)
        except _UpstreamFailure as failure:
            self._upstream_errors[failure.reason].inc()
            response = _error_response(failure.status, failure.message)
        except _ClientFailure as failure:
            self._rejected[failure.reason].inc()
            response = client_error(failure.status, failure.message)
            if failure.status == 408 and isinstance(request.protocol, GuardedConnection):
                request.protocol.close_without_lingering()
        self._requests[_status_class(response.status)].inc()
        self._metrics.request_duration.observe(time.perf_counter() - started)
        return response

    async def _forward(self, request: web.BaseRequest, started: float) -> web.StreamResponse:
        inference_id = request.headers.get(self._id_header)
        capture = self._capture and self._sampler.sampled(inference_id)
        if capture and self._writer is not None and self._writer.paused:
            self._skipped_disk.inc()
            capture = False
        cap_in = capture and self._cap_input
        wall = time.time()

        # -- request body --------------------------------------------------------------------
        length = request.content_length
        in_body: bytes | None = None
        data: Any = None
        body: _Body | None = None
        if request.body_exists:
            te = request.headers.get(hdrs.TRANSFER_ENCODING)
            if te is not None and (
                te.strip().lower() != "chunked" or request.version < aiohttp.HttpVersion11
            ):
                raise _ClientFailure(
                    400, "bad_framing", "only 'Transfer-Encoding: chunked' on HTTP/1.1 is accepted"
                )
            if length is not None and length > self._max_body:
                raise _body_too_large(self._max_body)
            limit = self._max_payload if cap_in else SMALL_BODY_BYTES
            if length is not None and length <= limit:
                in_body = await self._read_body(request.content, length)
                data = in_body
            else:
                if cap_in and length is not None:
                    self._too_large.inc()
                    capture = cap_in = False
                body = _Body(
                    request.content,
                    self._body_timeout,
                    self._max_body,
                    self._max_payload if cap_in else None,
                )
                data = body.iterate()
        elif cap_in:
            in_body = b""

        sent = time.perf_counter()
        try:
            try:
                upstream = await self._pool.request(
                    request.method, request.raw_path, request.raw_headers, data
                )
            except Exception:
                if body is not None and body.failure is not None:
                    raise body.failure from None  # the client's body failed, not the model
                raise
        except UpstreamError as exc:
            status = 504 if isinstance(exc, ConnectTimeout | ResponseTimeout) else 502
            raise _UpstreamFailure(status, exc.reason, str(exc)) from None
        model_latency = time.perf_counter() - sent
        self._metrics.upstream_duration.observe(model_latency)

        try:
            if cap_in and in_body is None and body is not None:
                in_body = body.kept()
                if in_body is None:
                    self._too_large.inc()
                    capture = False
            status = upstream.status
            capture = capture and (200 <= status < 300 or self._capture_errors)
            cap_out = capture and self._cap_output
            out_headers = end_to_end(upstream.headers)
            no_body = request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200
            rlen = upstream.content_length
            out_body: bytes | None = None
            response: web.StreamResponse
            if no_body:
                response = _RawResponse(
                    status=status, reason=upstream.reason, headers=out_headers, body=b""
                )
                out_body = b"" if cap_out else None
            elif rlen is not None and rlen <= (self._max_payload if cap_out else SMALL_BODY_BYTES):
                out_body = await _read_whole(upstream)
                response = _RawResponse(
                    status=status, reason=upstream.reason, headers=out_headers, body=out_body
                )
            else:
                if cap_out and rlen is not None:
                    self._too_large.inc()
                    capture = cap_out = False
                response, out_body = await self._stream(request, upstream, out_headers, cap_out)
                if cap_out and out_body is None:
                    self._too_large.inc()
                    capture = False
        finally:
            upstream.release()

        if capture and self._writer is not None:
            req_headers = resp_headers = None
            if self._header_names:
                req_headers = _pick(request.headers, self._header_names)
                resp_headers = _pick(upstream.headers, self._header_names)
            self._writer.offer(
                CaptureItem(
                    inference_time=wall,
                    method=request.method,
                    path=request.path,
                    status=status,
                    model_latency_s=model_latency,
                    inference_id=inference_id,
                    target_model=request.headers.get(self._model_header),
                    input_body=in_body if cap_in else None,
                    input_content_type=request.headers.get("Content-Type"),
                    output_body=out_body if cap_out else None,
                    output_content_type=upstream.headers.get("Content-Type"),
                    request_headers=req_headers,
                    response_headers=resp_headers,
                )
            )
        return response

    async def _read_body(self, content: aiohttp.StreamReader, length: int) -> bytes:
        """Read a body of known length, waiting at most the body timeout for each piece."""
        try:
            if content.total_bytes >= length:  # all here already (the usual small request)
                return await content.readexactly(length)
            parts = []
            need = length
            while need:
                async with asyncio.timeout(self._body_timeout):
                    chunk = await content.read(need)
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", length)
                parts.append(chunk)
                need -= len(chunk)
            return b"".join(parts)
        except TimeoutError:
            raise _body_timeout(self._body_timeout) from None
        except asyncio.IncompleteReadError:
            raise _ClientFailure(
                400, "malformed", "request body shorter than Content-Length"
            ) from None
        except web.RequestPayloadError:
            raise _bad_body() from None

    async def _stream(
        self,
        request: web.BaseRequest,
        upstream: UpstreamResponse,
        headers: CIMultiDict[str],
        capture: bool,
    ) -> tuple[web.StreamResponse, bytes | None]:
        """Stream the upstream body to the client; keep a copy up to the capture limit."""
        response = _RawStreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        if upstream.content_length is None and request.version >= aiohttp.HttpVersion11:
            response.enable_chunked_encoding()  # HTTP/1.0 clients get the body until close instead
        try:
            await response.prepare(request)
        except ConnectionResetError:
            return self._client_gone(request, response)
        kept: list[bytes] | None = [] if capture else None
        size = 0
        chunks = upstream.iter_chunks().__aiter__()
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except UpstreamError as exc:
                # Headers are gone already: the only honest signal left is to cut the connection.
                self._upstream_errors["disconnected"].inc()
                log.warning(
                    "model server failed mid-response for %s %s: %s",
                    request.method,
                    request.path,
                    exc,
                )
                if request.transport is not None:
                    request.transport.close()
                return response, None
            try:
                await response.write(chunk)
            except ConnectionResetError:
                return self._client_gone(request, response)
            if kept is not None:
                size += len(chunk)
                if size > self._max_payload:
                    kept = None
                else:
                    kept.append(chunk)
        try:
            await response.write_eof()
        except ConnectionResetError:
            return self._client_gone(request, response)
        return response, (b"".join(kept) if kept is not None else None)

    def _client_gone(
        self, request: web.BaseRequest, response: web.StreamResponse
    ) -> tuple[web.StreamResponse, None]:
        """The client hung up while its response streamed: count it, capture nothing."""
        self._client_aborts.inc()
        log.debug("client went away during %s %s", request.method, request.path)
        return response, None


class _UpstreamFailure(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


async def _read_whole(upstream: UpstreamResponse) -> bytes:
    try:
        return await upstream.read()
    except Disconnected as exc:
        raise _UpstreamFailure(
            502, "disconnected", "the model server closed the connection mid-body"
        ) from exc
    except ResponseTimeout as exc:
        raise _UpstreamFailure(
            504, "timeout", "the model server did not send its body in time"
        ) from exc
    except UpstreamError as exc:
        raise _UpstreamFailure(
            502, "protocol", f"bad response from the model server: {exc}"
        ) from exc


class _ClientFailure(Exception):
    """A request the proxy refuses because of the client's bytes (answered 4xx, then closed)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _body_too_large(limit: int) -> _ClientFailure:
    return _ClientFailure(413, "body_too_large", f"request body over {limit} bytes")


def _pick(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], names: tuple[str, ...]
) -> dict[str, str]:
    """The allow-listed headers present, lower-case names, repeated fields joined."""
    out = {}
    for name in names:
        values = headers.getall(name, ())
        if values:
            out[name] = ", ".join(values)
    return out


class _Body:
    """A request body forwarded as it arrives: each read waits at most ``timeout`` for the
    client, the total is held to ``max_bytes``, and a copy is kept up to ``keep`` bytes.

    A failure is raised into the upstream request and remembered in ``failure``, so the handler
    answers for the client, not the model server.
    """

    def __init__(
        self, content: aiohttp.StreamReader, timeout: float, max_bytes: int, keep: int | None
    ) -> None:
        self._content = content
        self._timeout = timeout
        self._max = max_bytes
        self._keep = keep
        self._chunks: list[bytes] | None = [] if keep is not None else None
        self._size = 0
        self.failure: _ClientFailure | None = None

    async def iterate(self) -> AsyncIterator[bytes]:
        content = self._content
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    chunk = await content.readany()
            except TimeoutError:
                self.failure = _body_timeout(self._timeout)
                raise self.failure from None
            except web.RequestPayloadError:
                self.failure = _bad_body()
                raise self.failure from None
            if not chunk:
                return
            self._size += len(chunk)
            if self._size > self._max:
                self.failure = _body_too_large(self._max)
                raise self.failure
            if self._chunks is not None:
                if self._keep is not None and self._size > self._keep:
                    self._chunks = None
                else:
                    self._chunks.append(chunk)
            yield chunk

    def kept(self) -> bytes | None:
        return b"".join(self._chunks) if self._chunks is not None else None


def _body_timeout(seconds: float) -> _ClientFailure:
    return _ClientFailure(408, "body_timeout", f"request body stalled for {seconds:g} s")


def _bad_body() -> _ClientFailure:
    return _ClientFailure(400, "bad_framing", "invalid chunked request body")


class _HeaderPassthrough:
    """Keeps aiohttp from adding Content-Type or Server headers the upstream did not send."""

    _added: tuple[str, ...]

    def _remember(self, headers: CIMultiDict[str]) -> None:
        self._added = tuple(h for h in ("Content-Type", "Server") if h not in headers)

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()  # type: ignore[misc]
        for name in self._added:
            self.headers.popall(name, None)  # type: ignore[attr-defined]


class _RawResponse(_HeaderPassthrough, web.Response):
    """A buffered response; HEAD/304 keep the upstream's Content-Length, 204/1xx drop it."""

    def __init__(
        self, *, status: int, reason: str | None, headers: CIMultiDict[str], body: bytes
    ) -> None:
        self._remember(headers)
        super().__init__(status=status, reason=reason, headers=headers, body=body)


class _RawStreamResponse(_HeaderPassthrough, web.StreamResponse):
    def __init__(self, *, status: int, reason: str | None, headers: CIMultiDict[str]) -> None:
        self._remember(headers)
        super().__init__(status=status, reason=reason, headers=headers)
