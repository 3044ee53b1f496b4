"""The proxy port's HTTP/1.1 server: an asyncio Protocol on ``httptools``, with the limits a
proxy facing the network needs.

Why not aiohttp's server here: on the request path it cost about 55 of the 80 us of CPU a
forwarded 1 KB request took (request and response objects, header multidicts, a stream reader,
header serialisation), where this protocol, like uvicorn's, parses with llhttp and writes each
response in one call. aiohttp still serves the admin port (metrics, probes) and the analyzer.

Parsing is llhttp's (via httptools), which refuses ambiguous framing outright: Content-Length
with Transfer-Encoding, duplicate or non-numeric Content-Length, a Transfer-Encoding whose last
coding is not ``chunked``, obs-fold, whitespace before the colon, bare LF. Added here:

- **Head limits.** A request line or header field over ``server.max_request_header_bytes``,
  more than ``server.max_request_headers`` fields, or a whole head over
  ``server.max_request_head_bytes`` (counted as bytes arrive, so an endless head is cut off
  early) get 431. Transfer-Encoding on HTTP/1.0 (RFC 9112 section 6.1) and CONNECT get 400.
- **HTTP/1.x only.** A request line without a version (``GET /``, which llhttp reads as
  HTTP/0.9) gets 400; another major version (``HTTP/2.0`` in plain text) gets 505.
- **Header-read deadline.** From connecting, and from the first byte of each later request,
  a client has ``server.header_read_timeout_seconds`` to send the whole head; then 408 and close
  (a connection that never sent a byte is just closed).
- **Body limits.** Each wait for body bytes is bounded by ``server.body_read_timeout_seconds``
  (408, closed at once); bodies over ``server.max_body_bytes`` are refused with 413, by their
  Content-Length up front or counted as they stream.
- **Connections.** Past ``server.max_connections`` a new connection gets 503 before any of its
  bytes are read. Idle keep-alive connections close after ``server.keepalive_timeout_seconds``.
  Reading pauses while a request body waits unread past 256 KiB, and while a pipelined request
  waits its turn, so a connection holds a bounded amount of memory.

Every refusal is a short plain-text answer with ``X-Modeltap-Error: request`` and a counter by
reason (``modeltap_sidecar_rejected_requests_total``), never a logged traceback per bad request.
``Expect: 100-continue`` is answered here when the handler first waits for the body.

The handler gets an :class:`Exchange` (the request, its body as bytes or chunks, and the methods
that answer it) and runs as one task per request, unless the callback handler takes the request
first (the proxy's route for a small request that arrived whole: answered from the model server
connection's callbacks, no task); requests on a connection are answered in order. Draining (``drain``) keeps accepting and serving but closes each connection after its
answer; shutdown then stops accepting, closes idle connections, lets in-flight requests finish
(their connections close after the answer) and cuts what is left at the deadline.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httptools

from sidecar.config import ServerConfig
from sidecar.exchange import REASONS, ClientConnection, ClientFailure, ClientGone, Exchange, Headers
from sidecar.metrics import REJECT_REASONS, SidecarMetrics

log = logging.getLogger(__name__)

_HIGH_WATER = 256 * 1024  # unread request body bytes before reading from the client pauses
# After an answer given without reading the whole request, how long what the client still sends
# is read and dropped before the close: closing with unread bytes resets the connection, and a
# reset can destroy the answer before the client reads it.
LINGER_SECONDS = 0.5

Handler = Callable[[Exchange], Awaitable[None]]
# Takes an exchange without a task when it can (True), answering it from callbacks: see
# ClientConnection.finish/continue_in_task; False leaves it to the Handler's task.
CallbackHandler = Callable[[Exchange], bool]


def error_body(status: int, message: str, kind: str, *, close: bool) -> bytes:
    """A complete plain-text response from the proxy itself (``kind``: request or upstream)."""
    body = f"modeltap sidecar: {message}\n".encode()
    return (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{'Connection: close' + chr(13) + chr(10) if close else ''}"
        f"X-Modeltap-Error: {kind}\r\n\r\n"
    ).encode() + body


def classify_parse_error(exc: BaseException) -> tuple[int, str, str]:
    """(status, metric reason, message) for an error of llhttp's request parser."""
    text = str(exc).lower()
    if "content-length" in text or "transfer-encoding" in text or "chunk" in text:
        return 400, "bad_framing", "conflicting or invalid Content-Length/Transfer-Encoding"
    return 400, "malformed", "malformed request"


class ProxyServer:
    """The listening side: a protocol factory with the limits and the connections' registry."""

    def __init__(
        self,
        handler: Handler,
        config: ServerConfig,
        metrics: SidecarMetrics,
        callbacks: CallbackHandler | None = None,
    ) -> None:
        self.handler = handler
        self.callbacks = callbacks
        self.config = config
        self.metrics = metrics
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self.closing = False  # no new connections (shutdown)
        self.close_answers = False  # every answer closes its connection (draining, shutdown)
        self.rejected = {r: metrics.rejected.labels(r) for r in REJECT_REASONS}  # all reasons
        self._server: asyncio.Server | None = None
        self._refused = error_body(503, "too many open connections", "request", close=True)
        metrics.connections.set_function(lambda: len(self.connections))

    def __call__(self) -> Connection:
        return Connection(self)

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        """Start accepting; returns the bound address."""
        self._server = await self.loop.create_server(self, host, port, backlog=1024)
        listening: Any = self._server  # uvloop's sockets is a list, typed as a tuple
        sockets = listening.sockets
        sock = sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    def refuse_connection(self, transport: asyncio.Transport) -> None:
        self.metrics.connections_refused.inc()
        transport.write(self._refused)
        close_softly(self.loop, transport)

    def drain(self) -> None:
        """Keep accepting and serving, but close each connection after its answer.

        Keep-alive clients then reconnect through the Service, which by then routes elsewhere.
        """
        self.close_answers = True

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting; let in-flight requests finish for up to ``timeout`` seconds."""
        self.closing = True
        self.close_answers = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.cut()
        if self._server is not None:
            await self._server.wait_closed()


def close_softly(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
    """Half-close now (the client sees the answer, then EOF), fully close a moment later."""
    if transport.can_write_eof():
        transport.write_eof()
    loop.call_later(LINGER_SECONDS, transport.close)


_DEADLINE_HEAD, _DEADLINE_BODY, _DEADLINE_IDLE = 1, 2, 3


class Connection(ClientConnection, asyncio.Protocol):
    """One client connection: the parser, the limits, and the requests answered in order."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.upgraded = False
        self.no_linger = False
        self._refused = False  # over the connection limit: never registered
        self._ignore = False  # answered and closing: further bytes are dropped
        self._client_eof = False
        self._parser = httptools.HttpRequestParser(self)
        self._in_head = False
        self._head_bytes = 0
        self._url = b""
        self._fields: Headers = []
        self._fields_size = 0  # the fields' bytes as "name: value\r\n" lines
        self._parsing: Exchange | None = None  # the request whose bytes are being parsed
        self._active: Exchange | None = None  # the request being answered
        self._queue: collections.deque[Exchange] = collections.deque()
        self._reading_paused = False
        # One timer handle per connection, pushed forward lazily when it fires early.
        self._deadline: float | None = None
        self._deadline_kind = 0
        self._body_waiting: Exchange | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp: Any = transport  # uvloop's transport is not an asyncio.Transport subclass
        server = self.server
        if len(server.connections) >= server.config.max_connections or server.closing:
            self._refused = True
            server.refuse_connection(tcp)
            return
        self.transport = tcp
        server.connections.add(self)
        self._arm(_DEADLINE_HEAD, server.config.header_read_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self.lost = True
        self.server.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gone = ClientFailure(400, "malformed", "the client closed the connection")
        if self._parsing is not None:
            self._parsing._fail(gone)
        for ex in self._queue:
            ex._fail(gone)
        self.wake_drain()

    def body_limit(self) -> int:
        return self.server.config.max_body_bytes

    def closing(self) -> bool:
        return self.server.close_answers

    async def drain(self) -> None:
        await self.wait_drained()
        if self.lost:
            raise ClientGone

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(data)

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        if self.transport is not None and not self.lost:
            self.transport.writelines(parts)

    def cut(self) -> None:
        """Close now, whatever is in progress."""
        if self.transport is not None:
            self.transport.close()

    def close_if_idle(self) -> None:
        if self._active is None and not self._queue and not self._in_head:
            self.cut()

    # -- bytes in ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._ignore or self._refused or self.transport is None:
            return
        if self._parsing is None and not self._in_head:
            if self._deadline_kind != _DEADLINE_HEAD:
                self._arm(_DEADLINE_HEAD, self.server.config.header_read_timeout_seconds)
            self._head_bytes = 0
        if self._parsing is None:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            failure = exc.__context__
            if isinstance(failure, ClientFailure):
                self._reject(failure)
            else:
                log.error("request parser callback failed", exc_info=failure)
                self._reject(ClientFailure(400, "malformed", "malformed request"))
            return
        except httptools.HttpParserUpgrade:
            # The request is complete (CONNECT was refused in on_headers_complete); the bytes
            # after it belong to another protocol, which is not proxied: close after the answer.
            self.upgraded = True
            self.transport.pause_reading()
        except httptools.HttpParserError as exc:
            status, reason, message = classify_parse_error(exc)
            failure = ClientFailure(status, reason, message)
            parsing = self._parsing
            if parsing is not None and parsing is self._active:
                parsing._fail(failure)  # its handler answers and closes; nothing more is parsed
                self._parsing = None
                self._ignore = True
            else:
                if parsing is not None and parsing in self._queue:
                    self._queue.remove(parsing)  # never started: answered here
                self._reject(failure)
            return
        if self._parsing is None and self._in_head:
            limit = self.server.config.max_request_head_bytes
            if self._head_bytes > limit:
                self._reject(
                    ClientFailure(431, "headers_too_large", f"request head over {limit} bytes")
                )
                return
        if self._active is None and self._queue:
            self._next()
        else:
            self.update_reading()

    def eof_received(self) -> bool | None:
        # A client may half-close after its request and still read the answer: keep the
        # transport open while a request is in progress and close after its answer.
        self._client_eof = True
        if self._parsing is not None:
            self._parsing._fail(ClientFailure(400, "malformed", "request body cut short"))
            self._parsing = None
        return True if (self._active is not None or self._queue) else None

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = b""
        self._fields = []
        self._fields_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        limit = self.server.config.max_request_header_bytes
        if len(self._url) > limit:
            raise ClientFailure(431, "headers_too_large", f"request line over {limit} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        config = self.server.config
        if len(name) + len(value) + 2 > config.max_request_header_bytes:
            raise ClientFailure(
                431,
                "headers_too_large",
                f"header field over {config.max_request_header_bytes} bytes",
            )
        if len(self._fields) >= config.max_request_headers:
            raise ClientFailure(431, "headers_too_large", "too many header fields")
        self._fields.append((name, value))
        self._fields_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._in_head = False
        config = self.server.config
        parser = self._parser
        method = parser.get_method().decode("ascii", "replace")
        fields = self._fields
        size = len(method) + len(self._url) + 13 + self._fields_size
        if size > config.max_request_head_bytes:
            raise ClientFailure(
                431, "headers_too_large", f"request head over {config.max_request_head_bytes} bytes"
            )
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            # llhttp takes a request line without a version as HTTP/0.9 (and parses headers
            # after it): forwarded, it would become an HTTP/1.1 request the client never sent.
            if version == "0.9":
                raise ClientFailure(400, "http_version", "request line without HTTP/1.x version")
            raise ClientFailure(505, "http_version", f"HTTP/{version} is not supported")
        http10 = version == "1.0"
        length: int | None = None
        chunked = expect = False
        for name, value in fields:
            n = len(name)  # (no lower-case copy of the other names)
            if n == 14 and name.lower() == b"content-length":
                length = int(value)  # llhttp checked it: digits, one value
            elif n == 17 and name.lower() == b"transfer-encoding":
                if http10:
                    raise ClientFailure(
                        400, "bad_framing", "Transfer-Encoding is not allowed on HTTP/1.0"
                    )
                if value.strip().lower() != b"chunked":  # a coding the proxy would pass on as
                    raise ClientFailure(  # if it were none (llhttp accepts "gzip, chunked")
                        400, "bad_framing", "only 'Transfer-Encoding: chunked' is accepted"
                    )
                chunked = True
            elif (
                n == 6
                and name.lower() == b"expect"
                and value.lower() == b"100-continue"
                and not http10
            ):
                expect = True
        if method == "CONNECT":
            raise ClientFailure(400, "malformed", "CONNECT is not proxied")
        if self._deadline_kind == _DEADLINE_HEAD:
            self._disarm()
        ex = Exchange(
            self,
            method,
            self._url.decode("utf-8", "surrogateescape"),
            http10,
            fields,
            length,
            chunked,
            parser.should_keep_alive(),
            expect,
        )
        self._parsing = ex
        self._queue.append(ex)

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing._feed(body)

    def on_message_complete(self) -> None:
        ex, self._parsing = self._parsing, None
        if ex is not None:
            ex._eof()

    # -- requests ------------------------------------------------------------------------------
    def _next(self) -> None:
        ex = self._queue.popleft()
        self._active = ex
        if self._deadline_kind == _DEADLINE_IDLE:
            self._disarm()
        self.update_reading()
        callbacks = self.server.callbacks
        if callbacks is not None:
            try:
                if callbacks(ex):
                    return  # answered from callbacks: finish() follows
            except Exception:
                self.crashed(ex)
                return
        self.loop.create_task(self._run(ex, self.server.handler(ex)))

    async def _run(self, ex: Exchange, handling: Awaitable[None]) -> None:
        try:
            await handling
        except Exception:
            self._failed(ex)
        finally:
            self._finish(ex)

    def _failed(self, ex: Exchange) -> None:
        log.exception("proxy handler failed for %s %s", ex.method, ex.target)
        if not ex.started:
            ex.close_after = True
            ex.started = ex.done = True
            self.write(error_body(500, "internal error", "request", close=True))
        else:
            ex.abort()

    def finish(self, ex: Exchange) -> None:
        self._finish(ex)

    def crashed(self, ex: Exchange) -> None:
        self._failed(ex)
        self._finish(ex)

    def continue_in_task(self, ex: Exchange, rest: Coroutine[Any, Any, None]) -> None:
        self.loop.create_task(self._run(ex, rest))

    def _finish(self, ex: Exchange) -> None:
        self._active = None
        if self.lost or self.transport is None:
            return
        if not ex.done:
            ex.abort()
        if ex.close_after or not ex.keep_alive or self.server.close_answers or self.upgraded:
            if ex.complete or self.no_linger or self._client_eof:
                self.cut()
            else:  # the rest of its body is still coming: read and drop it for a moment
                self._parsing = None
                self._ignore = True
                close_softly(self.loop, self.transport)
            return
        if self._client_eof and not self._queue:
            self.cut()
            return
        if self._queue:
            self._next()
            return
        if not self._in_head and self._parsing is None:
            self._arm(_DEADLINE_IDLE, self.server.config.keepalive_timeout_seconds)
        self.update_reading()

    def update_reading(self) -> None:
        """Pause reading while a pipelined request waits or a body waits unread in memory."""
        transport = self.transport
        if transport is None or self.lost or self.upgraded:
            return
        parsing = self._parsing
        pause = bool(self._queue) and self._active is not None
        if parsing is not None and parsing.buffered > _HIGH_WATER and not parsing._hold:
            pause = True
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _reject(self, failure: ClientFailure) -> None:
        """Answer a request that never became an exchange, and end the connection."""
        self.server.rejected[failure.reason].inc()
        log.debug("refused a request: %s", failure.message)
        transport = self.transport
        self._ignore = True
        self._parsing = None
        self._queue.clear()
        self._disarm()
        if transport is None:
            return
        if self._active is None:
            transport.write(error_body(failure.status, failure.message, "request", close=True))
            close_softly(self.loop, transport)
        else:  # answer the request in progress first, then close (no pipelined answer after)
            self._active.close_after = True

    # -- deadlines -------------------------------------------------------------------------------
    def _arm(self, kind: int, seconds: float) -> None:
        self._deadline = deadline = self.loop.time() + seconds
        self._deadline_kind = kind
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _disarm(self) -> None:
        self._deadline = None
        self._deadline_kind = 0

    def arm_body_deadline(self, ex: Exchange) -> None:
        self._body_waiting = ex
        self._arm(_DEADLINE_BODY, self.server.config.body_read_timeout_seconds)

    def disarm_body_deadline(self) -> None:
        self._body_waiting = None
        if self._deadline_kind == _DEADLINE_BODY:
            self._disarm()

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.lost:
            return
        if self.loop.time() < deadline:
            self._timer = self.loop.call_at(deadline, self._on_timer)
            return
        kind = self._deadline_kind
        self._disarm()
        config = self.server.config
        if kind == _DEADLINE_IDLE:
            self.cut()
        elif kind == _DEADLINE_HEAD:
            if self._head_bytes == 0 and not self._in_head:
                self.cut()  # connected (or kept alive) and never spoke: nothing to answer
                return
            seconds = config.header_read_timeout_seconds
            self._reject(
                ClientFailure(
                    408, "header_timeout", f"request head not received within {seconds:g} s"
                )
            )
        elif kind == _DEADLINE_BODY and self._body_waiting is not None:
            seconds = config.body_read_timeout_seconds
            self._body_waiting._fail(
                ClientFailure(408, "body_timeout", f"request body stalled for {seconds:g} s")
            )
