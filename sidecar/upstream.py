"""The upstream side of the proxy: a lean pooled HTTP/1.1 client on asyncio Protocols.

aiohttp's ClientSession was about a third of the request path's CPU (request objects, auto headers,
cookie and redirect handling, a task per request) for work a proxy does not need. This client
sends a request head built from the client's raw header bytes, parses the answer with ``httptools``
(the llhttp bindings uvicorn uses; nothing is parsed by hand) and hands back status, reason,
headers and a body to read whole or in chunks.

Contract:

- **Pool.** At most ``max_connections`` connections (0: no limit); idle ones are kept LIFO for
  ``keepalive_timeout`` seconds and reused. Waiting for a free slot counts against ``timeout``. A
  connection is reused only after a complete response the server allowed to keep alive. An
  idempotent request (RFC 9110 section 9.2.2) that failed before any response byte on a *reused*
  connection (the server closed it while idle) is sent once more on a new connection, as aiohttp
  does; a POST never is, since the model may have run it.
- **Framing.** Request bodies are sent as given: bytes or an async iterator under the client's
  Content-Length, or chunked when there is none. Responses with Content-Length, chunked, no body
  (HEAD, 1xx, 204, 304) and read-until-close are understood; interim 1xx answers are skipped.
- **Errors** (the proxy maps them to 502/504 and counts them by ``reason``)::

      UpstreamError
       ├── ConnectFailed      reason "connect": the connection was refused or failed
       ├── ConnectTimeout     reason "connect_timeout": no connection (or pool slot) in time
       ├── ResponseTimeout    reason "timeout": no response bytes for ``timeout`` seconds
       ├── Disconnected       reason "disconnected": the server closed the connection mid-answer
       └── ProtocolError      reason "protocol": the server's bytes are not HTTP/1.1

Body sources raise their own exceptions through :meth:`UpstreamPool.request` unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import ClassVar
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict

from sidecar.flow import WriteFlow
from sidecar.headers import HOP_BY_HOP, HOP_LENGTHS, forwardable, pick

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_HIGH_WATER = 256 * 1024  # buffered response bytes before reading from the socket pauses
# A request body above this size goes up in one writev beside its head, not copied behind it
# (the client connection's rule for answers, sidecar.exchange).
_JOIN_MAX = 65536


class UpstreamError(Exception):
    """The model server could not be reached or did not answer properly."""

    reason: ClassVar[str] = "protocol"


class ConnectFailed(UpstreamError):
    reason: ClassVar[str] = "connect"


class ConnectTimeout(UpstreamError):
    reason: ClassVar[str] = "connect_timeout"


class ResponseTimeout(UpstreamError):
    reason: ClassVar[str] = "timeout"


class Disconnected(UpstreamError):
    reason: ClassVar[str] = "disconnected"


class ProtocolError(UpstreamError):
    reason: ClassVar[str] = "protocol"


_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)
_HEAD_LENGTHS = HOP_LENGTHS | {len(b"host"), len(b"content-length")}
RawHeaders = list[tuple[bytes, bytes]]


def request_head(
    method: str, target: str, raw_headers: Iterable[tuple[bytes, bytes]], host: bytes
) -> tuple[bytes, bool]:
    """The upstream request head without hop-by-hop fields (RFC 9110 section 7.6.1).

    Returns the head and whether it carries a Content-Length. A missing Host gets ``host``.
    One pass over the fields; a Connection header naming other fields (rare) takes a second.
    """
    raw = raw_headers if isinstance(raw_headers, list) else list(raw_headers)
    parts = [f"{method} {target} HTTP/1.1\r\n".encode("utf-8", "surrogateescape")]
    has_host = has_length = False
    for name, value in raw:
        if len(name) in _HEAD_LENGTHS:  # (no lower-case copy of the other names)
            low = name.lower()
            if low in _HOP_BYTES:
                if low == b"connection" and _names_others(value):
                    return _request_head_named(parts[0], raw, host)
                continue
            if low == b"host":
                has_host = True
            elif low == b"content-length":
                has_length = True
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    if not has_host:
        parts.insert(1, b"Host: %s\r\n" % host)
    parts.append(b"\r\n")
    return b"".join(parts), has_length


def _names_others(connection: bytes) -> bool:
    """Whether a Connection value names a field beyond the fixed hop-by-hop ones."""
    for token in connection.split(b","):
        token = token.strip().lower()
        if token and token not in _HOP_BYTES:
            return True
    return False


def _request_head_named(
    line: bytes, raw: list[tuple[bytes, bytes]], host: bytes
) -> tuple[bytes, bool]:
    """:func:`request_head` when a Connection header names more fields to drop."""
    drop = set(_HOP_BYTES)
    for name, value in raw:
        if name.lower() == b"connection":
            drop.update(t.strip().lower() for t in value.split(b",") if t.strip())
    lines = [line]
    has_host = has_length = False
    for name, value in raw:
        low = name.lower()
        if low in drop:
            continue
        if low == b"host":
            has_host = True
        elif low == b"content-length":
            has_length = True
        lines.append(b"%s: %s\r\n" % (name, value))
    if not has_host:
        lines.insert(1, b"Host: %s\r\n" % host)
    lines.append(b"\r\n")
    return b"".join(lines), has_length


class ResponseWaiter:
    """Told of the answer to a request sent with :meth:`UpstreamPool.send_now` from the
    connection's callbacks (no future, no task): the request path's callback route for a small
    request (see ``sidecar.proxy``). A native base class, like ``ClientConnection``."""

    def upstream_answered(self, conn: _Connection, response: UpstreamResponse) -> None:
        """The response head has been parsed (with whatever of its body came with it)."""
        raise NotImplementedError

    def upstream_failed(self, conn: _Connection, error: UpstreamError) -> None:
        """The request failed before any response head; the connection is closed."""
        raise NotImplementedError


class UpstreamResponse:
    """Status, reason and headers of an answer; its body is read with :meth:`read` or
    :meth:`next_chunk`, then :meth:`release` returns the connection to the pool."""

    def __init__(
        self,
        conn: _Connection,
        status: int,
        raw_reason: bytes,
        raw_headers: RawHeaders,
        content_length: int | None,
    ) -> None:
        self._conn = conn
        self.status = status
        self.raw_reason = raw_reason
        self.raw_headers = raw_headers  # as received: names and values in bytes, in order
        self.content_length = content_length
        self._released = False

    @property
    def reason(self) -> str:
        return self.raw_reason.decode("utf-8", "surrogateescape")

    @property
    def headers(self) -> CIMultiDict[str]:
        """The fields as a multidict (built on demand; the proxy works on the raw list)."""
        return CIMultiDict(
            (n.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
            for n, v in self.raw_headers
        )

    def header(self, name: bytes) -> str | None:
        """The first field named ``name`` (lower-case bytes), decoded, or None."""
        for key, value in self.raw_headers:
            if len(key) == len(name) and key.lower() == name:
                return value.decode("utf-8", "replace")
        return None

    def forwardable(self) -> RawHeaders:
        """The end-to-end fields to send on."""
        return forwardable(self.raw_headers)

    def pick(self, names: tuple[bytes, ...]) -> dict[str, str]:
        return pick(self.raw_headers, names)

    def body_received(self) -> bytes | None:
        """The whole body when all of it has arrived (no wait), else None."""
        conn = self._conn
        return conn.take_all() if conn.complete else None

    def chunk_received(self) -> bytes | None:
        """The body bytes that have arrived and not been taken (no wait), or None."""
        conn = self._conn
        return conn.take_all() if conn.buffered else None

    async def read(self) -> bytes:
        """The whole body (raises ResponseTimeout/Disconnected)."""
        conn = self._conn
        conn.hold_all()  # the caller keeps it whole anyway (its Content-Length was checked)
        while (body := self.body_received()) is None:
            await conn.wait_body()
        return body

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body as it arrives; None at its end."""
        conn = self._conn
        while True:
            if conn.buffered:
                return conn.take_all()
            if conn.complete:
                return None
            await conn.wait_body()

    def release(self) -> None:
        """Give the connection back (kept alive only after a complete, reusable answer)."""
        if not self._released:
            self._released = True
            self._conn.pool.release(self._conn)


class _Connection(WriteFlow, asyncio.Protocol):
    """One connection to the model server and the parser of the answer in progress."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._waiter: ResponseWaiter | None = None  # instead of _head: told from the callbacks
        self._response: UpstreamResponse | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._error: UpstreamError | None = None
        self._reset_message()
        self._no_body = False  # the request was HEAD
        self._skip_interim = False
        self._sending = False
        self._deadline: float | None = None  # while waiting for the server: when it is too late
        self._timeout_message = ""
        self._timer: asyncio.TimerHandle | None = None

    def _reset_message(self) -> None:
        self._status_text = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.got_bytes = False
        self.headers_done = False
        self.keep_alive = False
        self._until_close = False

    # -- protocol callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._head is None and self._waiter is None and not self.headers_done:
            # Bytes nobody asked for (idle connection): it cannot be trusted for reuse.
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        self.got_bytes = True
        if self._deadline is not None:
            self._deadline = self.loop.time() + self.pool.timeout  # a timeout between reads
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the model server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"bad response from the model server: {exc}"))
        told = self._waiter
        if told is not None and self.headers_done:
            # Last: the waiter may answer, release this connection and send on it again.
            self._waiter = None
            self._deadline = None
            response = self._response
            assert response is not None
            told.upstream_answered(self, response)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.headers_done and not self.complete and self._until_close:
            self._message_done(keep_alive=False)  # a body delimited by the close
        elif not self.complete or self._head is not None:
            self._fail(Disconnected("the model server closed the connection"))
        self.wake_drain()

    # -- httptools callbacks ------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self._status_text += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._reset_message()  # an interim answer: the real one follows
            self._skip_interim = True
            return
        self._skip_interim = False
        chunked = False
        length: int | None = None
        for name, value in self._raw_headers:
            size = len(name)  # (no lower-case copy of the other names)
            if size == 14 and name.lower() == b"content-length":
                length = int(value)  # llhttp checked it: digits, one value
            elif size == 17 and name.lower() == b"transfer-encoding":
                chunked = True
        self.headers_done = True
        self._until_close = length is None and not chunked and status not in (204, 304)
        response = UpstreamResponse(self, status, self._status_text, self._raw_headers, length)
        self._response = response
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(response)
        if self._no_body:
            # llhttp cannot be told the request was HEAD: the answer ends with its head, and
            # the connection is not reused (the parser would wait for a body).
            self._message_done(keep_alive=False)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        # Not while the request body is still going up: a server that answers as it reads
        # (an echo) would wait for us to read and we for it, each with a full buffer.
        if (
            self.buffered > _HIGH_WATER
            and not self._sending
            and not self._paused_reading
            and self.transport
        ):
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake_body()

    def on_message_complete(self) -> None:
        if self._skip_interim:
            self._skip_interim = False
            return
        self._message_done(keep_alive=self._parser.should_keep_alive())

    # -- used by the pool and the response ----------------------------------------------------
    def _message_done(self, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        self._wake_body()

    def _wake_body(self) -> None:
        waiter, self._body_waiter = self._body_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        self.keep_alive = False
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_exception(error)
        waiter, self._body_waiter = self._body_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()
        told = self._waiter
        if told is not None and not self.headers_done:
            # (Once the head is parsed the waiter hears of it after the parser returns, and the
            # error waits for the body's reader, as for a task awaiting the head.)
            self._waiter = None
            self._deadline = None
            told.upstream_failed(self, error)

    def hold_all(self) -> None:
        self._sending = True  # no pausing: the body is read whole
        if self._paused_reading and self.transport is not None and not self.closed:
            self._paused_reading = False
            self.transport.resume_reading()

    def take_all(self) -> bytes:
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self._paused_reading and self.transport is not None and not self.closed:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    async def wait_body(self) -> None:
        if self._error is not None:
            raise self._error
        self._body_waiter = waiter = self.loop.create_future()
        self._arm("the model server did not send its body in time")
        try:
            await waiter
        finally:
            self._deadline = None

    def send_now(
        self, head: bytes, body: bytes | None, no_body: bool, waiter: ResponseWaiter
    ) -> None:
        """:meth:`send` for a request held whole, answered through ``waiter`` (no wait here)."""
        transport = self.transport
        assert transport is not None and not self.closed  # (an idle connection fit for reuse)
        self._reset_message()
        self._response = None
        self._error = None
        self._no_body = no_body
        self._sending = False
        self._waiter = waiter
        _write_whole(transport, head, body)
        self._arm("the model server did not answer in time")

    async def send(
        self, head: bytes, body: bytes | AsyncIterator[bytes] | None, chunked: bool, no_body: bool
    ) -> UpstreamResponse:
        transport = self.transport
        if transport is None or self.closed:
            raise Disconnected("the model server closed the connection")
        self._reset_message()
        self._error = None
        self._no_body = no_body
        self._sending = False
        head_future: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self._head = head_future
        if body is None or isinstance(body, bytes):
            _write_whole(transport, head, body)
        else:
            transport.write(head)
            self._sending = True
            try:
                await self._send_body(transport, body, chunked)
            finally:
                self._sending = False
        self._arm("the model server did not answer in time")
        try:
            return await head_future
        finally:
            self._deadline = None

    # -- read deadline ------------------------------------------------------------------------
    # One timer handle per connection, pushed forward lazily when it fires early, instead of an
    # asyncio.timeout() (a handle, a task lookup and a context manager) for every wait.
    def _arm(self, message: str) -> None:
        self._deadline = deadline = self.loop.time() + self.pool.timeout
        self._timeout_message = message
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.closed:
            return
        if self.loop.time() < deadline:
            self._timer = self.loop.call_at(deadline, self._on_timer)
            return
        self._deadline = None
        self._fail(ResponseTimeout(self._timeout_message))

    async def _send_body(
        self, transport: asyncio.Transport, body: AsyncIterator[bytes], chunked: bool
    ) -> None:
        async for chunk in body:
            if transport.is_closing():
                break
            if chunked:
                if chunk:
                    transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
            else:
                transport.write(chunk)
            await self.wait_drained()
        if chunked and not transport.is_closing():
            transport.write(b"0\r\n\r\n")


def _write_whole(transport: asyncio.Transport, head: bytes, body: bytes | None) -> None:
    """A request held whole in one send: a small body joined to its head, a large one beside
    it (a 100 KB body copied behind its head cost a copy of the body per request)."""
    if body is not None and len(body) > _JOIN_MAX:
        transport.writelines((head, body))
    else:
        transport.write(head + body if body else head)


class _Slots:
    """The pool's connection limit: asyncio.Semaphore's job without a coroutine or a scan of the
    waiters when a slot is free (every request takes one). Waiters are served in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self, timeout: float) -> None:
        """Wait for a slot; raises ConnectTimeout after ``timeout`` seconds."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot as the wait ended: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise ConnectTimeout("no free connection to the model server in time") from None
            raise

    def give(self) -> None:
        """Return a slot: straight to the longest waiter, else to the free count."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class UpstreamPool:
    """A keep-alive pool of connections to one ``http://host:port`` model server."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int,
        keepalive_timeout: float,
        connect_timeout: float,
        timeout: float,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http://host:port URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc.encode("idna")
        self.base_path = parts.path.rstrip("/")
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_timeout
        self._slots = _Slots(self.loop, max_connections) if max_connections > 0 else None
        self._idle: collections.deque[_Connection] = collections.deque()
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        """Send one request; the caller must :meth:`UpstreamResponse.release` the answer."""
        head, has_length = request_head(method, self.base_path + target, raw_headers, self.netloc)
        chunked = not has_length and body is not None and not isinstance(body, bytes)
        if chunked:
            head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
        slots = self._slots
        if slots is not None and not slots.try_take():
            await slots.take(self.timeout)
        try:
            conn = self._idle_connection()
            if conn is None:
                conn = await self._connect()
            try:
                return await conn.send(head, body, chunked, method == "HEAD")
            except Disconnected:
                self._discard(conn)
                if not self._may_resend(conn, method, body):
                    raise
            except BaseException:
                self._discard(conn)
                raise
            return await self._send_on_new(method, head, body, chunked)
        except BaseException:
            if slots is not None:
                slots.give()
            raise

    def _may_resend(
        self, conn: _Connection, method: str, body: bytes | AsyncIterator[bytes] | None
    ) -> bool:
        """An idempotent request held whole that failed on a reused connection before any
        response byte (the server closed it while idle) is sent once more."""
        replayable = method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        return conn.reused and replayable and not conn.got_bytes

    async def _send_on_new(
        self, method: str, head: bytes, body: bytes | AsyncIterator[bytes] | None, chunked: bool
    ) -> UpstreamResponse:
        conn = await self._connect()
        try:
            return await conn.send(head, body, chunked, method == "HEAD")
        except BaseException:
            self._discard(conn)
            raise

    # -- the callback route: a request held whole, on an idle connection, answered through a
    # ResponseWaiter from the connection's callbacks (no coroutine, no future, no task) ----------
    def take_idle(self) -> _Connection | None:
        """A pool slot and an idle connection fit for reuse, without waiting; None (nothing
        taken) when either would need a wait."""
        slots = self._slots
        if slots is not None and not slots.try_take():
            return None
        conn = self._idle_connection()
        if conn is None and slots is not None:
            slots.give()
        return conn

    def send_now(
        self,
        conn: _Connection,
        method: str,
        target: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        waiter: ResponseWaiter,
    ) -> bytes:
        """Send on ``conn`` (from :meth:`take_idle`); ``waiter`` hears of the answer. Returns
        the head sent (for :meth:`resend`)."""
        head = request_head(method, self.base_path + target, raw_headers, self.netloc)[0]
        conn.send_now(head, body, method == "HEAD", waiter)
        return head

    async def resend(
        self, conn: _Connection, error: UpstreamError, method: str, head: bytes, body: bytes | None
    ) -> UpstreamResponse:
        """After ``error`` on a :meth:`send_now`: what :meth:`request` does after a failed send
        (once more on a new connection when allowed, else ``error``), the slot given back on
        failure."""
        try:
            self._discard(conn)
            if not (isinstance(error, Disconnected) and self._may_resend(conn, method, body)):
                raise error
            return await self._send_on_new(method, head, body, False)
        except BaseException:
            if self._slots is not None:
                self._slots.give()
            raise

    def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection still fit for reuse (no coroutine: the
        usual case on the request path), or None."""
        idle = self._idle
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed or now - conn.idle_since > self._keepalive:
                self._discard(conn)
                continue
            conn.reused = True
            return conn
        return None

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), self.host, self.port
                )
        except TimeoutError:
            raise ConnectTimeout("could not connect to the model server in time") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to the model server: {exc}") from None
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.complete and conn.keep_alive and not conn.closed and not self._closed:
            conn.idle_since = self.loop.time()
            conn.chunks = []
            conn.buffered = 0
            conn.headers_done = False  # bytes arriving while idle now close it
            self._idle.append(conn)
        else:
            self._discard(conn)
        if self._slots is not None:
            self._slots.give()

    def _discard(self, conn: _Connection) -> None:
        conn.closed = True
        if conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        """Close every idle connection; busy ones close when released."""
        self._closed = True
        while self._idle:
            self._discard(self._idle.pop())
