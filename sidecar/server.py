"""The proxy port's HTTP server: aiohttp's low-level server plus the limits it lacks.

From aiohttp (3.14) as it is: ``max_line_size``/``max_field_size`` (one request line or header
field), ``max_headers`` (field count), ``keepalive_timeout`` (idle keep-alive connections are
closed), and its llhttp parser, which refuses ambiguous framing outright: Content-Length with
Transfer-Encoding, duplicate or non-numeric Content-Length, a Transfer-Encoding whose last coding
is not ``chunked``, duplicate Transfer-Encoding, obs-fold, whitespace before the colon, bare LF.

Added here, by a :class:`~aiohttp.web_protocol.RequestHandler` subclass (one per connection):

- **Header-read deadline.** aiohttp has none: a head sent one byte a second is read forever (its
  keep-alive timer only starts after a response). A timer starts when a connection opens and when
  the first byte of a later request arrives, and stops when the parser delivers the head. If it
  fires with bytes received the client gets 408 and the connection is closed; a new connection
  that sent nothing is just closed.
- **Whole-head size.** aiohttp bounds each field and the count, not their sum (128 x 8 KiB); the
  bytes of a head in progress are counted and past ``server.max_request_head_bytes`` the client
  gets 431.
- **431, not 400,** for a field that is too long or too many fields, a short plain-text body
  instead of the parser's message, and a counter by reason instead of one logged traceback per
  bad request (an easy log flood).
- **Connection limit.** Past ``server.max_connections`` open connections a new one is answered
  503 and closed at once, before any of its bytes are read.

Body-read timeouts and the body size limit need the request, so :mod:`sidecar.proxy` applies them.
This module reaches into aiohttp internals (``_waiter``, ``_request_count``,
``_make_error_handler``); ``tests/integration/test_proxy_limits.py`` pins the behaviour, so an
aiohttp upgrade that moves them fails there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import _ErrInfo

from sidecar.metrics import SidecarMetrics

log = logging.getLogger(__name__)

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def raw_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for use without a request."""
    body = f"modeltap sidecar: {message}\n".encode()
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "X-Modeltap-Error: request\r\n\r\n"
    ).encode() + body


def client_error(status: int, message: str) -> web.Response:
    """The response to a request the proxy refuses; the connection closes after it."""
    resp = web.Response(
        status=status,
        text=f"modeltap sidecar: {message}\n",
        headers={"X-Modeltap-Error": "request"},
    )
    resp.force_close()
    return resp


class HeadTooLarge(BadHttpMessage):
    """A request head whose fields are each within bounds but whose sum is not."""


def head_size(message: RawRequestMessage) -> int:
    """The bytes of a parsed request head (request line, fields, line ends)."""
    size = len(message.method) + len(message.path) + 13  # "M P HTTP/1.1\r\n" and the blank line
    for name, value in message.raw_headers:
        size += len(name) + len(value) + 4
    return size


def classify_parse_error(exc: BaseException, max_field: int) -> tuple[int, str, str]:
    """(status, metric reason, message) for an error of aiohttp's request parser."""
    if isinstance(exc, HeadTooLarge):
        return 431, "headers_too_large", exc.message
    if isinstance(exc, LineTooLong):
        return 431, "headers_too_large", f"request line or header field over {max_field} bytes"
    # The first line is the parser's description; what follows quotes the client's bytes.
    text = str(getattr(exc, "message", "") or exc).split("\n", 1)[0].lower()
    if "too many headers" in text:
        return 431, "headers_too_large", "too many header fields"
    if "content-length" in text or "transfer-encoding" in text or "chunk" in text:
        return 400, "bad_framing", "conflicting or invalid Content-Length/Transfer-Encoding"
    return 400, "malformed", "malformed request"


class GuardedServer(web.Server):
    """``web.Server`` whose connections enforce the limits above."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        metrics: SidecarMetrics,
        max_connections: int,
        header_read_timeout: float,
        max_head_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.metrics = metrics
        self.max_connections = max_connections
        self.header_read_timeout = header_read_timeout
        self.max_head_bytes = max_head_bytes
        self.max_field_size = int(kwargs.get("max_field_size", 8190))
        self.open_connections = 0
        self.rejected = {r: metrics.rejected.labels(r) for r in _ALL_REASONS}
        metrics.connections.set_function(lambda: self.open_connections)

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self, loop=self._loop, **self._kwargs)


_ALL_REASONS = ("header_timeout", "headers_too_large", "bad_framing", "malformed")
_REFUSED = raw_response(503, "too many open connections")
# After an answer given without reading the request, how long what the client still sends is read
# and dropped before the close: closing with unread bytes resets the connection, and a reset can
# destroy the answer before the client reads it.
LINGER_SECONDS = 0.5


def close_softly(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
    """Half-close now (the client sees the answer, then EOF), fully close a moment later."""
    if transport.can_write_eof():
        transport.write_eof()
    loop.call_later(LINGER_SECONDS, transport.close)


class GuardedConnection(web.RequestHandler):
    """One client connection: aiohttp's handler with a head deadline, a head size limit, a slot."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._refused = False
        # The head deadline is a time, not a timer per request: one handle per connection is
        # pushed forward lazily when it fires early (aiohttp's keep-alive timer does the same).
        self._head_deadline: float | None = None
        self._head_handle: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    # -- connection slot ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open_connections >= guard.max_connections:
            self._refused = True
            guard.metrics.connections_refused.inc()
            tcp = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
            tcp.write(_REFUSED)
            close_softly(self._loop, tcp)
            return
        guard.open_connections += 1
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._guard.open_connections -= 1
        self._disarm()
        if self._head_handle is not None:
            self._head_handle.cancel()
            self._head_handle = None
        super().connection_lost(exc)

    def close_without_lingering(self) -> None:
        """Close right after the current response instead of reading the rest of the body.

        aiohttp normally drains an unread body for up to ``lingering_time`` (10 s), so that a
        client still uploading sees the response; a client whose body stalled gains nothing.
        """
        self._lingering_time = 0.0

    # -- request heads ------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_deadline is None:
            # Between requests ``_waiter`` is the future the connection waits on for a head;
            # without it a request is in progress and these bytes are its body.
            if self._waiter is None or not data:
                super().data_received(data)
                return
            self._arm()
        self._head_bytes += len(data)
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a head was delivered (or refused by the parser)
            self._disarm()
            if self._head_bytes > self._guard.max_head_bytes:  # maybe, or a body came along
                self._refuse_large_heads(self._request_count - parsed)
        elif self._head_bytes > self._guard.max_head_bytes:
            self._reject(
                431,
                "headers_too_large",
                f"request head over {self._guard.max_head_bytes} bytes",
            )

    def _refuse_large_heads(self, new: int) -> None:
        """Turn just-parsed requests whose head is over the limit into a 431 answer."""
        limit = self._guard.max_head_bytes
        for i in range(len(self._messages) - min(new, len(self._messages)), len(self._messages)):
            message = self._messages[i][0]
            if isinstance(message, RawRequestMessage) and head_size(message) > limit:
                exc = HeadTooLarge(f"request head over {limit} bytes")
                self._messages[i] = (
                    _ErrInfo(status=431, exc=exc, message=exc.message),
                    EMPTY_PAYLOAD,
                )

    def _arm(self) -> None:
        self._head_bytes = 0
        self._head_deadline = deadline = self._loop.time() + self._guard.header_read_timeout
        if self._head_handle is None:
            self._head_handle = self._loop.call_at(deadline, self._head_timeout)

    def _disarm(self) -> None:
        self._head_deadline = None

    def _head_timeout(self) -> None:
        self._head_handle = None
        deadline = self._head_deadline
        if deadline is None or self.transport is None or self._force_close:
            return
        if self._loop.time() < deadline:  # armed again since this handle was scheduled
            self._head_handle = self._loop.call_at(deadline, self._head_timeout)
            return
        if self._head_bytes == 0:
            self.force_close()  # connected and never spoke: nothing to answer
            return
        self._reject(
            408,
            "header_timeout",
            f"request head not received within {self._guard.header_read_timeout:g} s",
        )

    def _reject(self, status: int, reason: str, message: str) -> None:
        """Answer a request whose head never completed, and end the connection."""
        self._disarm()
        self._guard.rejected[reason].inc()
        log.debug("refused a request from %s: %s", self.peername, message)
        transport = self.transport
        if transport is None:
            return
        transport.write(raw_response(status, message))
        # force_close() without its immediate close: aiohttp lets go of the transport (and
        # ignores further bytes), and close_softly ends it.
        self.transport = None
        self.force_close()
        close_softly(self._loop, transport)

    # -- parser errors ------------------------------------------------------------------------
    def _make_error_handler(
        self, err_info: _ErrInfo
    ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        status, reason, message = classify_parse_error(err_info.exc, self._guard.max_field_size)
        self._guard.rejected[reason].inc()
        log.debug("refused a request from %s: %s (%s)", self.peername, message, err_info.exc)

        async def handler(_request: web.BaseRequest) -> web.StreamResponse:
            return client_error(status, message)

        return handler
