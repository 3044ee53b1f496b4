"""The proxy port's HTTP/1.1 server under arbitrary bytes, in arbitrary pieces.

A connection is driven through a fake transport (no sockets) with a handler that echoes the body
length. Properties: valid requests, pipelined and split anywhere, get exactly their answers in
order; any bytes at all get well-formed answers (or none) and a closed or reusable connection,
never an exception out of the protocol, a handler left running or a connection left registered.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import httptools
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from sidecar.config import ServerConfig
from sidecar.exchange import ClientFailure, Exchange
from sidecar.metrics import SidecarMetrics
from sidecar.server import ProxyServer
from tests.fuzz.strategies import FUZZ


class FakeTransport:
    """What the protocol uses of a uvloop TCP transport; closing reports connection_lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.out = bytearray()
        self.closed = False
        self.eof = False
        self.paused = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        assert not self.closed and not self.eof, "write after close"
        self.out += data

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.write(part)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True


async def echo_length(ex: Exchange) -> None:
    try:
        body = await ex.read_body() if ex.has_body else b""
    except ClientFailure as failure:
        ex.refuse(failure)
        return
    text = b"%s %s %d" % (
        ex.method.encode(),
        ex.target.encode("utf-8", "surrogateescape"),
        len(body),
    )
    ex.respond(200, b"OK", [(b"Content-Type", b"text/plain")], text, len(text))


class Problems(logging.Handler):
    """Collects warnings and errors from anywhere (the loop's exception handler included)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def config(**overrides: Any) -> ServerConfig:
    base = {"max_request_head_bytes": 4096, "max_request_header_bytes": 1024,
            "max_request_headers": 20, "max_body_bytes": 10_000,
            "header_read_timeout_seconds": 5.0, "body_read_timeout_seconds": 5.0}  # fmt: skip
    return ServerConfig(**{**base, **overrides})


async def drive(pieces: list[bytes], half_close: bool) -> tuple[bytes, FakeTransport, ProxyServer]:
    """Feed ``pieces`` (the loop turning between them), then EOF if asked; wait until quiet."""
    loop = asyncio.get_running_loop()
    server = ProxyServer(echo_length, config(), SidecarMetrics(CollectorRegistry()))
    conn = server()
    transport = FakeTransport(loop)
    transport.protocol = conn
    conn.connection_made(transport)  # type: ignore[arg-type]
    for piece in pieces:
        if transport.closed:
            break
        for _ in range(1000):  # the protocol asked for no more bytes yet: let it work
            if (
                not transport.paused
                or transport.closed
                or (conn._active is None and not conn._queue)
            ):
                break
            await asyncio.sleep(0)
        conn.data_received(piece)
        await asyncio.sleep(0)
    if half_close and not transport.closed and not conn.eof_received():
        transport.close()
    for _ in range(200):  # let handlers finish (each step is one loop turn)
        await asyncio.sleep(0)
        if conn._active is None and not conn._queue:
            break
    return bytes(transport.out), transport, server


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a stream of responses; every byte must belong to a well-formed one."""
    out: list[tuple[int, bytes]] = []

    class Sink:
        body = b""

        def on_body(self, chunk: bytes) -> None:
            self.body += chunk

        def on_message_complete(self) -> None:
            out.append((parser.get_status_code(), self.body))
            self.body = b""

    parser = httptools.HttpResponseParser(Sink())
    parser.feed_data(data)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    path = "/" + draw(st.text("abc/%20?=&", max_size=12))
    body = draw(st.binary(max_size=300)) if method in ("POST", "PUT") else b""
    chunked = bool(body) and draw(st.booleans())
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode()
    extra = draw(st.lists(st.sampled_from([b"X-A: 1\r\n", b"Expect: 100-continue\r\n",
                                           b"Accept: */*\r\n"]), max_size=3))  # fmt: skip
    head += b"".join(extra)
    if chunked:
        cut = draw(st.integers(0, len(body)))
        parts = [p for p in (body[:cut], body[cut:]) if p]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        raw = head + b"Transfer-Encoding: chunked\r\n\r\n" + framed
    elif body:
        raw = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    else:
        raw = head + b"\r\n"
    return raw, f"{method} {path} {len(body)}"


@FUZZ
@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(0, 5000), max_size=6))
def test_valid_pipelined_requests_get_their_answers_in_order(
    reqs: list[tuple[bytes, str]], cuts: list[int]
) -> None:
    stream = b"".join(raw for raw, _ in reqs)
    data, transport, _server = asyncio.run(drive(split(stream, cuts), half_close=False))
    answers = responses(data.replace(b"HTTP/1.1 100 Continue\r\n\r\n", b""))
    got = [body.decode() for status, body in answers if status == 200]
    assert got == [expected for _, expected in reqs]
    assert not transport.closed  # keep-alive: still open for the next request


@FUZZ
@given(
    st.binary(max_size=600)
    | st.lists(
        st.sampled_from(
            [
                b"GET / HTTP/1.1\r\n",
                b"POST /x HTTP/1.0\r\n",
                b"Host: x\r\n",
                b"Content-Length: 3\r\n",
                b"Content-Length: -1\r\n",
                b"Transfer-Encoding: chunked\r\n",
                b"Transfer-Encoding: gzip\r\n",
                b"Connection: close\r\n",
                b"Upgrade: h2c\r\nConnection: upgrade\r\n",
                b"Expect: 100-continue\r\n",
                b"\r\n",
                b"\n",
                b"abc",
                b"3\r\nabc\r\n",
                b"0\r\n\r\n",
                b"zz\r\n",
                b"X-Long: " + b"a" * 1100 + b"\r\n",
                b"CONNECT a:1 HTTP/1.1\r\n",
                b" \t",
                b"\x00",
            ]
        ),
        max_size=14,
    ).map(b"".join),
    st.lists(st.integers(0, 2000), max_size=5),
    st.booleans(),
)
def test_any_bytes_get_well_formed_answers_and_leave_nothing_behind(
    stream: bytes, cuts: list[int], half_close: bool
) -> None:
    problems = Problems()
    logging.getLogger().addHandler(problems)
    try:
        data, transport, server = asyncio.run(drive(split(stream, cuts), half_close))
    finally:
        logging.getLogger().removeHandler(problems)
    assert not problems.records, [r.getMessage() for r in problems.records]
    cleaned = data.replace(b"HTTP/1.1 100 Continue\r\n\r\n", b"")
    answers = responses(cleaned)  # raises on anything that is not a sequence of responses
    for status, _ in answers:
        assert status in (200, 400, 408, 413, 431, 500)
    refused = [s for s, _ in answers if s != 200]
    if refused:  # a refusal ends the connection, and is the last answer
        assert answers[-1][0] != 200
        assert transport.closed or transport.eof
        assert refused[-1] != 500
    if transport.closed:
        assert not server.connections
