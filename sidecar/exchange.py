"""One request on the proxy port and the answer to it: what the handler works with.

:class:`Exchange` holds the request as parsed (method, raw target, raw header list, framing), gives
its body whole or as it arrives, and writes the answer: whole in one write, streamed (Content-Length,
chunked, or until close for HTTP/1.0), or a refusal. The connection that feeds it and the limits it
enforces are in :mod:`sidecar.server`; :class:`ClientConnection` is what an exchange asks of it,
declared here so that this module does not import the server (one direction, no circle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from urllib.parse import unquote

from sidecar.flow import WriteFlow
from sidecar.headers import pick

Headers = list[tuple[bytes, bytes]]


class ClientConnection(WriteFlow):
    """What an :class:`Exchange` needs of the client connection that carries it; the server's
    ``Connection`` is the one implementation (a native base class: compiled, its calls are as
    direct as calls on the connection itself)."""

    lost: bool  # the client is gone
    upgraded: bool  # the connection was handed over (101 Switching Protocols)
    no_linger: bool  # close without draining what the client still sends

    def body_limit(self) -> int:
        """The largest request body accepted (bytes)."""
        raise NotImplementedError

    def closing(self) -> bool:
        """Whether answers now close their connection (the server is draining)."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        raise NotImplementedError

    async def drain(self) -> None:
        """Wait until the client takes writes again; ClientGone when it left."""
        raise NotImplementedError

    def cut(self) -> None:
        """Close now, whatever is in progress."""
        raise NotImplementedError

    def update_reading(self) -> None:
        """Pause or resume reading from the client after the exchange's buffer changed."""
        raise NotImplementedError

    def arm_body_deadline(self, ex: Exchange) -> None:
        """Start the body read timeout while ``ex`` waits for body bytes."""
        raise NotImplementedError

    def disarm_body_deadline(self) -> None:
        raise NotImplementedError

    # The handler's callback route (an exchange answered without a task of its own):
    def finish(self, ex: Exchange) -> None:
        """``ex`` has been answered: go on with the connection's next request."""
        raise NotImplementedError

    def crashed(self, ex: Exchange) -> None:
        """The handler failed unexpectedly (called in its ``except``): log it, answer 500 or
        cut, then :meth:`finish` (what a failing handler task gets)."""
        raise NotImplementedError

    def continue_in_task(self, ex: Exchange, rest: Coroutine[Any, Any, None]) -> None:
        """Run ``rest`` (the remainder of ``ex``'s handling) in a task, then finish ``ex``."""
        raise NotImplementedError


REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ClientFailure(Exception):
    """A request refused because of the client's bytes: answered 4xx, then the connection closes."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason  # the label of modeltap_sidecar_rejected_requests_total
        self.message = message


class ClientGone(Exception):
    """The client closed its connection while its response was being written."""


def body_too_large(limit: int) -> ClientFailure:
    return ClientFailure(413, "body_too_large", f"request body over {limit} bytes")


class Exchange:
    """One request on a connection and the answer to it.

    The body arrives through the connection; :meth:`read_body` and :meth:`next_chunk` wait for
    it (each wait bounded by the body timeout) and raise :class:`ClientFailure` for a body that
    stalls, is too large or is badly framed. Answer with :meth:`respond` (whole) or
    :meth:`start`, :meth:`write`, :meth:`end` (streamed), or :meth:`refuse`.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_error",
        "_expect_continue",
        "_hold",
        "_received",
        "_stream_chunked",
        "_waiter",
        "chunked",
        "close_after",
        "complete",
        "content_length",
        "done",
        "http10",
        "keep_alive",
        "method",
        "raw_headers",
        "started",
        "target",
    )

    def __init__(
        self,
        conn: ClientConnection,
        method: str,
        target: str,
        http10: bool,
        raw_headers: Headers,
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target  # the raw request-target: path and query as the client sent them
        self.http10 = http10
        self.raw_headers = raw_headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.close_after = False
        self.started = False  # response head written
        self.done = False  # response complete
        self.complete = not chunked and not content_length  # whole body received
        self._conn = conn
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._received = 0
        self._error: ClientFailure | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._expect_continue = expect_continue
        self._stream_chunked = False
        self._hold = False  # read whole: no pausing (its size was checked against a limit)

    # -- the request ----------------------------------------------------------------------------
    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query."""
        path = self.target.partition("?")[0]
        return unquote(path) if "%" in path else path

    def header(self, name: bytes) -> str | None:
        """The first field named ``name`` (lower-case bytes), decoded, or None."""
        for key, value in self.raw_headers:
            if len(key) == len(name) and key.lower() == name:
                return value.decode("utf-8", "replace")
        return None

    def headers3(self, a: bytes, b: bytes, c: bytes) -> tuple[str | None, str | None, str | None]:
        """:meth:`header` of ``a``, ``b`` and ``c`` in one pass over the fields (the capture
        record's three)."""
        va = vb = vc = None
        la, lb, lc = len(a), len(b), len(c)
        for key, value in self.raw_headers:
            n = len(key)
            if n != la and n != lb and n != lc:
                continue
            low = key.lower()
            if va is None and low == a:
                va = value.decode("utf-8", "replace")
            if vb is None and low == b:
                vb = value.decode("utf-8", "replace")
            if vc is None and low == c:
                vc = value.decode("utf-8", "replace")
        return va, vb, vc

    def headers_named(self, names: tuple[bytes, ...]) -> dict[str, str]:
        """The fields among ``names`` (lower-case bytes) present, repeated fields joined."""
        return pick(self.raw_headers, names)

    def whole(self) -> bool:
        """The body (if any) has all arrived, with a Content-Length, and nothing failed."""
        return self.complete and not self.chunked and self._error is None

    # -- the callback route (see ClientConnection) ----------------------------------------------
    def finish(self) -> None:
        self._conn.finish(self)

    def crashed(self) -> None:
        self._conn.crashed(self)

    def continue_in_task(self, rest: Coroutine[Any, Any, None]) -> None:
        self._conn.continue_in_task(self, rest)

    # -- the body (fed by the connection) ------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        self._received += len(data)
        if self._error is not None:
            return
        limit = self._conn.body_limit()
        if self._received > limit:
            self._chunks = []
            self._buffered = 0
            self._fail(body_too_large(limit))
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self._wake()

    def _eof(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: ClientFailure) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def client_lost(self) -> bool:
        """The client's connection is gone."""
        return self._conn.lost

    @property
    def buffered(self) -> int:
        return self._buffered

    async def _wait(self) -> None:
        conn = self._conn
        if self._expect_continue:
            self._expect_continue = False
            conn.write(_CONTINUE)
        self._waiter = waiter = conn.loop.create_future()
        conn.arm_body_deadline(self)
        try:
            await waiter
        finally:
            conn.disarm_body_deadline()

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        self._conn.update_reading()
        return data

    def body_received(self) -> bytes | None:
        """The whole body when all of it has arrived (no wait), else None."""
        if not self.complete or self._error is not None:
            return None
        return self._take() if self._chunks else b""

    async def read_body(self) -> bytes:
        """The whole body (its size was checked against the limit by the caller)."""
        self._hold = True
        self._conn.update_reading()
        while (body := self.body_received()) is None:
            if self._error is not None:
                raise self._error
            await self._wait()
        return body

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body as it arrives; None at its end."""
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                return self._take()
            if self.complete:
                return None
            await self._wait()

    # -- the answer -----------------------------------------------------------------------------
    def _connection_field(self) -> bytes:
        conn = self._conn
        if self.close_after or not self.keep_alive or conn.closing() or conn.upgraded:
            self.close_after = True
            return b"Connection: close\r\n"
        return b"Connection: keep-alive\r\n" if self.http10 else b""

    def _head(
        self, status: int, reason: bytes, headers: Headers, length: int | None, framing: bytes = b""
    ) -> bytes:
        """The response head: ``headers`` as given, with Content-Length set to ``length`` (the
        first one, in place) or every Content-Length removed (None), in one pass
        (:func:`~sidecar.headers.with_length`'s rule)."""
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        value = b"%d" % length if length is not None else b""
        placed = length is None
        for name, field in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                if length is None:
                    continue
                if not placed:
                    placed = True
                    field = value
            lines.append(name)
            lines.append(b": ")
            lines.append(field)
            lines.append(b"\r\n")
        if not placed:
            lines.append(b"Content-Length: %s\r\n" % value)
        if framing:
            lines.append(framing)
        lines.append(self._connection_field())
        lines.append(b"\r\n")
        return b"".join(lines)

    def respond(
        self, status: int, reason: bytes, headers: Headers, body: bytes, length: int | None
    ) -> None:
        """The whole answer in one write; ``length`` is the Content-Length to send (None: none),
        kept where ``headers`` has it."""
        head = self._head(status, reason, headers, length)
        self.started = self.done = True
        if len(body) > 65536:
            self._conn.writelines((head, body))  # no copy of a large body into the head
        else:
            self._conn.write(head + body if body else head)

    def start(
        self,
        status: int,
        reason: bytes,
        headers: Headers,
        length: int | None,
        first: bytes = b"",
    ) -> None:
        """Start a streamed answer: Content-Length when known, else chunked (HTTP/1.0: until
        the connection closes). ``first``, the body's first piece when it has already arrived,
        goes in the same write as the head: one send, so the client's first read holds its
        first body byte (two sends cost a syscall and often a second wake-up of the client).
        Follow it with :meth:`drain`."""
        framing = b""
        if length is None and self.http10:
            self.close_after = True
        elif length is None:
            framing = b"Transfer-Encoding: chunked\r\n"
            self._stream_chunked = True
        self.started = True
        head = self._head(status, reason, headers, length, framing)
        if not first:
            self._conn.write(head)
        elif self._stream_chunked:
            self._conn.writelines((head, b"%x\r\n" % len(first), first, b"\r\n"))
        else:
            self._conn.writelines((head, first))

    async def write(self, chunk: bytes) -> None:
        """One piece of a streamed body; waits while the client's socket buffer is full."""
        conn = self._conn
        if conn.lost:
            raise ClientGone
        if self._stream_chunked:
            if chunk:
                conn.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            conn.write(chunk)
        await conn.drain()

    async def drain(self) -> None:
        """Wait while the client's socket buffer is full (ClientGone when the client left)."""
        await self._conn.drain()

    def end(self) -> None:
        """Finish a streamed answer."""
        if self._stream_chunked and not self._conn.lost:
            self._conn.write(b"0\r\n\r\n")
        self.done = True

    def abort(self) -> None:
        """Cut the connection mid-answer: the only honest signal once the head has gone."""
        self.close_after = True
        self._conn.cut()

    def refuse(self, failure: ClientFailure) -> None:
        """Answer a request refused for the client's bytes; the connection closes after it."""
        self.close_after = True
        if failure.status == 408:
            self._conn.no_linger = True  # a stalled client gains nothing from lingering
        self._plain(failure.status, failure.message, b"request")

    def fail_upstream(self, status: int, message: str) -> None:
        """Answer 502/504 for the model server (the connection stays usable)."""
        self._plain(status, message, b"upstream")

    def _plain(self, status: int, message: str, kind: bytes) -> None:
        body = f"modeltap sidecar: {message}\n".encode()
        headers = [(b"Content-Type", b"text/plain; charset=utf-8"), (b"X-Modeltap-Error", kind)]
        reason = REASONS.get(status, "Error").encode()
        self.respond(status, reason, headers, body, len(body))
