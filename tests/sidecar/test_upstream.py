"""The pooled upstream client against a raw asyncio server on 127.0.0.1 (real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.compiled import compiled_modules
from sidecar.headers import HOP_BY_HOP
from sidecar.upstream import (
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    ProtocolError,
    ResponseTimeout,
    ResponseWaiter,
    UpstreamPool,
    request_head,
)

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


async def _serve(reply: Reply) -> tuple[asyncio.Server, list[bytes], list[int]]:
    """A server answering each request head (+ Content-Length body) with ``reply``."""
    heads: list[bytes] = []
    conns: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        head += await reader.readexactly(int(line.split(b":")[1]))
                    if line.lower() == b"transfer-encoding: chunked":
                        head += await reader.readuntil(b"0\r\n\r\n")
                heads.append(head)
                await reply(head, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, heads, conns


def _pool(server: asyncio.Server, timeout: float = 5.0) -> UpstreamPool:
    port = server.sockets[0].getsockname()[1]
    return UpstreamPool(
        f"http://127.0.0.1:{port}",
        max_connections=4,
        keepalive_timeout=30,
        connect_timeout=1,
        timeout=timeout,
    )


def test_request_head_drops_hop_by_hop_and_adds_a_missing_host() -> None:
    raw = [
        (b"Connection", b"keep-alive, X-Hop"),
        (b"X-Hop", b"1"),
        (b"TE", b"trailers"),
        (b"X-Keep", b"a"),
        (b"Content-Length", b"3"),
    ]
    head, has_length = request_head("POST", "/p?q=%2F", raw, b"model:81")
    assert head == (
        b"POST /p?q=%2F HTTP/1.1\r\nHost: model:81\r\nX-Keep: a\r\nContent-Length: 3\r\n\r\n"
    )
    assert has_length
    head, has_length = request_head("GET", "/", [(b"host", b"client")], b"model:81")
    assert head == b"GET / HTTP/1.1\r\nhost: client\r\n\r\n" and not has_length


def _reference_head(
    method: str, target: str, raw: list[tuple[bytes, bytes]], host: bytes
) -> tuple[bytes, bool]:
    """The head as the two-pass builder made it: the fields a Connection header names (and the
    fixed hop-by-hop ones) dropped wherever they are, the rest as received, in order."""
    drop = {h.encode() for h in HOP_BY_HOP}
    for name, value in raw:
        if name.lower() == b"connection":
            drop |= {t.strip().lower() for t in value.split(b",") if t.strip()}
    lines = [f"{method} {target} HTTP/1.1\r\n".encode()]
    kept = [(n, v) for n, v in raw if n.lower() not in drop]
    lines += [b"%s: %s\r\n" % kv for kv in kept]
    if not any(n.lower() == b"host" for n, _ in kept):
        lines.insert(1, b"Host: %s\r\n" % host)
    has_length = any(n.lower() == b"content-length" for n, _ in kept)
    return b"".join([*lines, b"\r\n"]), has_length


_NAMES = st.sampled_from(
    [b"Host", b"host", b"HOST", b"Content-Length", b"content-type", b"X-A", b"x-a", b"X-Hop",
     b"Connection", b"CONNECTION", b"Keep-Alive", b"TE", b"Expect", b"Upgrade", b"close"]
)  # fmt: skip
_VALUES = st.sampled_from(
    [b"1", b"", b"a, b", b"close", b"keep-alive", b"Keep-Alive, x-hop", b" X-A ,", b"te, close",
     b"upgrade", b",,"]
)  # fmt: skip


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=8))
def test_request_head_matches_the_two_pass_rule(raw: list[tuple[bytes, bytes]]) -> None:
    """The one-pass builder sends byte for byte what dropping every hop-by-hop field (and every
    field a Connection header names, before or after it) and keeping the rest would: repeated
    fields, odd casing and order kept."""
    assert request_head("PUT", "/a?b", raw, b"m:1") == _reference_head("PUT", "/a?b", raw, b"m:1")


async def test_keep_alive_reuse_and_content_length() -> None:
    async def reply(_head: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello")

    server, heads, conns = await _serve(reply)
    pool = _pool(server)
    for _ in range(3):
        resp = await pool.request("POST", "/x", [(b"Content-Length", b"2")], b"hi")
        assert (resp.status, resp.reason, resp.content_length) == (200, "OK", 5)
        assert resp.headers.getall("x-a") == ["1", "2"]
        assert await resp.read() == b"hello"
        resp.release()
    assert len(conns) == 1 and heads[0].endswith(b"\r\n\r\nhi")
    await pool.close()
    server.close()


async def test_chunked_interim_head_and_until_close() -> None:
    async def reply(head: bytes, w: asyncio.StreamWriter) -> None:
        if head.startswith(b"HEAD"):
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
        elif b"/close" in head:
            w.write(b"HTTP/1.0 200 OK\r\n\r\nuntil-close")
            w.close()
        else:
            w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            w.write(b"HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")

    server, heads, _ = await _serve(reply)
    pool = _pool(server)

    async def body() -> AsyncIterator[bytes]:
        yield b"12"
        yield b"345"

    resp = await pool.request("POST", "/c", [], body())
    assert resp.status == 201 and resp.content_length is None
    chunks = []
    while (chunk := await resp.next_chunk()) is not None:
        chunks.append(chunk)
    assert b"".join(chunks) == b"abc"
    resp.release()
    assert heads[0].endswith(b"Transfer-Encoding: chunked\r\n\r\n2\r\n12\r\n3\r\n345\r\n0\r\n\r\n")

    resp = await pool.request("HEAD", "/h", [], None)
    assert resp.content_length == 99 and await resp.read() == b""
    resp.release()

    resp = await pool.request("GET", "/close", [], None)
    assert await resp.read() == b"until-close"
    resp.release()
    await pool.close()
    server.close()


async def test_errors_map_to_reasons() -> None:
    async def reply(head: bytes, w: asyncio.StreamWriter) -> None:
        if b"/cut" in head:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await w.drain()
            w.close()
        elif b"/junk" in head:
            w.write(b"NOT HTTP\r\n\r\n")
        elif b"/slow" in head:
            await asyncio.sleep(2)

    server, _, _ = await _serve(reply)
    pool = _pool(server, timeout=0.3)
    resp = await pool.request("GET", "/cut", [], None)
    with pytest.raises(Disconnected):
        await resp.read()
    resp.release()
    with pytest.raises(ProtocolError):
        await pool.request("GET", "/junk", [], None)
    with pytest.raises(ResponseTimeout):
        await pool.request("GET", "/slow", [], None)
    port = server.sockets[0].getsockname()[1]
    await pool.close()
    server.close()
    await server.wait_closed()
    dead = UpstreamPool(
        f"http://127.0.0.1:{port}",
        max_connections=0,
        keepalive_timeout=1,
        connect_timeout=1,
        timeout=1,
    )
    with pytest.raises(ConnectFailed):
        await dead.request("GET", "/", [], None)


async def test_the_connection_limit_queues_requests_in_order_and_times_out() -> None:
    async def reply(head: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server, _, conns = await _serve(reply)
    port = server.sockets[0].getsockname()[1]
    pool = UpstreamPool(
        f"http://127.0.0.1:{port}",
        max_connections=1,
        keepalive_timeout=30,
        connect_timeout=1,
        timeout=0.3,
    )
    held = await pool.request("GET", "/1", [], None)  # holds the only slot until released
    with pytest.raises(ConnectTimeout, match="no free connection"):
        await pool.request("GET", "/late", [], None)

    order: list[str] = []

    async def queued(name: str) -> None:
        resp = await pool.request("GET", f"/{name}", [], None)
        order.append(name)
        assert await resp.read() == b"ok"
        resp.release()

    first = asyncio.ensure_future(queued("a"))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(queued("b"))
    await asyncio.sleep(0.01)
    cancelled = asyncio.ensure_future(queued("c"))
    await asyncio.sleep(0.01)
    cancelled.cancel()  # a waiter that gives up leaves no slot behind
    assert await held.read() == b"ok"
    held.release()
    await asyncio.wait_for(asyncio.gather(first, second), 2)
    assert order == ["a", "b"] and cancelled.cancelled()
    # every slot came back: one request at a time, all on the one kept-alive connection
    for _ in range(3):
        resp = await pool.request("GET", "/again", [], None)
        resp.release()
    assert len(conns) == 1
    await pool.close()
    server.close()
    await server.wait_closed()


class _Recorder(ResponseWaiter):
    """A waiter for send_now that keeps the answer. (Pure Python only: compiled, the native
    ResponseWaiter cannot be instantiated through an interpreted subclass; the callback-route
    tests of the proxy drive send_now there.)"""

    def __init__(self) -> None:
        self.answered: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def upstream_answered(self, conn: Any, response: Any) -> None:
        self.answered.set_result(response)

    def upstream_failed(self, conn: Any, error: Any) -> None:
        self.answered.set_exception(error)


async def test_a_large_request_body_goes_up_beside_its_head_not_copied() -> None:
    """A body held whole over 64 KiB is handed to the socket as the very object received (one
    writev with the head), on both ways of sending; the model server gets the same bytes."""

    async def reply(_head: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server, heads, _conns = await _serve(reply)
    pool = _pool(server)
    big = bytes(range(256)) * 400  # 102,400 bytes
    small = b"x" * 1000
    fields = [(b"Content-Length", str(len(big)).encode())]
    resp = await pool.request("POST", "/warm", [(b"Content-Length", b"0")], b"")
    await resp.read()
    resp.release()

    handed: list[bytes] = []
    wrapped: list[object] = []

    def record(conn: object) -> None:
        transport = conn.transport  # type: ignore[attr-defined]
        if any(t is transport for t in wrapped):
            return
        wrapped.append(transport)
        write, writelines = transport.write, transport.writelines

        def rec_write(data: bytes) -> None:
            handed.append(data)
            write(data)

        def rec_writelines(parts: tuple[bytes, ...]) -> None:
            handed.extend(parts)
            writelines(parts)

        transport.write, transport.writelines = rec_write, rec_writelines

    pure = "sidecar.upstream" not in compiled_modules()
    for body, lines in ((big, fields), (small, [(b"Content-Length", b"1000")])) if pure else ():
        conn = pool.take_idle()
        assert conn is not None
        record(conn)
        handed.clear()
        waiter = _Recorder()
        head = pool.send_now(conn, "POST", "/now", lines, body, waiter)
        answer = await waiter.answered
        assert await answer.read() == b"ok"  # type: ignore[attr-defined]
        answer.release()  # type: ignore[attr-defined]
        assert heads[-1] == head + body
        if body is big:
            assert any(part is big for part in handed)
        else:
            assert handed == [head + body]  # a small one still goes in one write
    conn = pool.take_idle()
    assert conn is not None
    record(conn)
    pool.release(conn)
    handed.clear()
    resp = await pool.request("POST", "/later", fields, big)
    assert await resp.read() == b"ok"
    resp.release()
    assert heads[-1].endswith(b"\r\n\r\n" + big)
    assert any(part is big for part in handed)
    await pool.close()
    server.close()
