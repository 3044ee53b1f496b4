"""The proxy port under abuse, over raw sockets: slow clients and upstreams, oversized heads and
bodies, ambiguous framing, many idle connections. Every loop is bounded in count and time."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import orjson
import pytest

from harness.metrics import scrape, value
from tests.conftest import SidecarProc

pytestmark = pytest.mark.integration

REJECTED = "modeltap_sidecar_rejected_requests_total"


def connect(sc: SidecarProc, timeout: float = 5.0) -> socket.socket:
    u = urlsplit(sc.proxy_url)
    return socket.create_connection((u.hostname, u.port), timeout=timeout)


def read_all(s: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything until the peer closes (the socket's timeout bounds each read)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while len(data) < limit and (chunk := s.recv(65536)):
            data += chunk
    return data


def read_response(s: socket.socket) -> bytes:
    """One response with a Content-Length, without waiting for the connection to close."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1."), response[:200]
    return int(response.split(b" ", 2)[1])


def exchange(sc: SidecarProc, raw: bytes) -> bytes:
    """Send ``raw``, then read until the sidecar closes the connection."""
    with connect(sc) as s:
        s.sendall(raw)
        return read_all(s)


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- slow clients ---------------------------------------------------------------------------


def test_slow_clients_get_408_and_are_disconnected(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream,
        "--server.header-read-timeout-seconds", "0.5",
        "--server.body-read-timeout-seconds", "0.5",
        "--server.keepalive-timeout-seconds", "1",
        "--capture.sample-percent", "100",
    )  # fmt: skip

    # A head dribbled a byte every 50 ms: the deadline runs from its first byte, not the last.
    head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with connect(sc) as s:
        started = time.monotonic()
        got = b""
        for byte in head:  # at most 10 s of dribbling; the sidecar answers long before
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                got += s.recv(65536)
            s.setblocking(True)
            if got:
                break
        s.settimeout(5)
        got += read_all(s)
        elapsed = time.monotonic() - started
    assert status_of(got) == 408
    assert b"request head not received within 0.5 s" in got
    assert 0.4 < elapsed < 3.0

    # A connection that never sends a byte is closed without an answer.
    with connect(sc) as s:
        started = time.monotonic()
        assert read_all(s) == b""
        assert time.monotonic() - started < 3.0

    # A body that stops halfway: known length (read whole), chunked (streamed), both 408.
    partial = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 10\r\n\r\n123"
    )
    got = exchange(sc, partial)
    assert status_of(got) == 408 and b"request body stalled for 0.5 s" in got
    chunked = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    got = exchange(sc, chunked)
    assert status_of(got) == 408

    # A body that keeps coming, slower in total than the timeout but never idle that long, passes.
    with connect(sc) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
        )
        for piece in (b"ab", b"cd", b"ef", b"gh"):
            time.sleep(0.25)
            s.sendall(piece)
        got = read_all(s)
    assert status_of(got) == 200 and got.endswith(b"abcdefgh")

    # An idle keep-alive connection is closed after server.keepalive_timeout_seconds.
    with connect(sc) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        got = read_all(s)
        assert status_of(got) == 200 and got.endswith(b"ok\n")
        assert 0.8 < time.monotonic() - started < 4.0

    samples = scrape(sc.admin_url)
    assert value(samples, REJECTED, reason="header_timeout") == 1
    assert value(samples, REJECTED, reason="body_timeout") == 2
    sc.proc.stop()
    assert "Traceback" not in sc.proc.log()


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: connects there hang."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(16):  # the accept queue holds one or two; stop at the first hang
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.settimeout(0.2)
            fillers.append(c)
            try:
                c.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel accepts every connection into the backlog")
        yield port
    finally:
        for c in fillers:
            c.close()
        server.close()


def test_slow_upstreams_get_504(upstream: str, start_sidecar: Callable[..., SidecarProc]) -> None:
    with unanswered_port() as port:
        sc = start_sidecar(
            f"http://127.0.0.1:{port}", "--upstream.connect-timeout-seconds", "0.5", name="hang"
        )
        started = time.monotonic()
        got = exchange(sc, b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(got) == 504
        assert b"could not connect to the model server in time" in got
        assert time.monotonic() - started < 3.0
        samples = scrape(sc.admin_url)
        assert (
            value(samples, "modeltap_sidecar_upstream_errors_total", reason="connect_timeout") == 1
        )

    slow = start_sidecar(upstream, "--upstream.timeout-seconds", "0.5", name="slow")
    got = exchange(slow, b"GET /slow?s=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(got) == 504 and b"did not answer in time" in got


# -- sizes ----------------------------------------------------------------------------------


def test_oversized_heads_get_431_and_bodies_413(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream,
        "--server.max-request-headers", "20",
        "--server.max-request-head-bytes", "16384",
        "--server.max-body-bytes", "100000",
        "--capture.sample-percent", "100",
    )  # fmt: skip
    get = b"GET /echo HTTP/1.1\r\nHost: x\r\n"
    long_field = get + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n"
    many = get + b"".join(b"X-%d: 1\r\n" % i for i in range(25)) + b"\r\n"
    large_head = get + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 4000) for i in range(6)) + b"\r\n"
    long_url = b"GET /echo?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for raw in (long_field, many, large_head, long_url):
        got = exchange(sc, raw)
        assert status_of(got) == 431, raw[:60]

    # Too large by its Content-Length: answered before a byte of it is sent (the sidecar then
    # drains what the client still sends for aiohttp's lingering time, so it can read this).
    with connect(sc) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100001\r\n\r\n")
        got = read_response(s)
    assert status_of(got) == 413 and b"request body over 100000 bytes" in got
    assert b"connection: close" in got.lower()
    # Too large as it streams (chunked, counted as it passes); a body right at the limit passes.
    chunks = b"".join(b"%x\r\n%s\r\n" % (20000, b"c" * 20000) for _ in range(6)) + b"0\r\n\r\n"
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    )
    with connect(sc) as s:
        s.sendall(raw)
        got = read_response(s)
    assert status_of(got) == 413, got[:200]
    ok = b"d" * 100000
    raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
    got = exchange(sc, raw + ok)
    assert status_of(got) == 200 and got.endswith(ok)

    samples = scrape(sc.admin_url)
    assert value(samples, REJECTED, reason="headers_too_large") == 4
    assert value(samples, REJECTED, reason="body_too_large") == 2
    assert call_ok(sc)
    sc.proc.stop()
    assert "Traceback" not in sc.proc.log()


def call_ok(sc: SidecarProc) -> bool:
    got = exchange(sc, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return status_of(got) == 200


# -- framing (request smuggling) ------------------------------------------------------------

POST = b"POST /echo HTTP/1.1\r\nHost: x\r\n"
SMUGGLED = b"GET /echo?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
AMBIGUOUS = {
    "content-length and transfer-encoding": POST
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    + SMUGGLED,
    "two different content-lengths": POST
    + b"Content-Length: 5\r\nContent-Length: 41\r\n\r\n0\r\n\r\n"
    + SMUGGLED,
    "two equal content-lengths": POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "content-length list": POST + b"Content-Length: 3, 3\r\n\r\nabc",
    "signed content-length": POST + b"Content-Length: +3\r\n\r\nabc",
    "transfer-encoding gzip": POST + b"Transfer-Encoding: gzip\r\n\r\nabc",
    "transfer-encoding gzip, chunked": POST
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "transfer-encoding chunked, identity": POST
    + b"Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "transfer-encoding xchunked": POST
    + b"Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "transfer-encoding twice": POST
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "space before colon": POST
    + b"Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    + SMUGGLED,
    "obs-fold": POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "transfer-encoding on HTTP/1.0": b"POST /echo HTTP/1.0\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "bad chunk size": POST + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "bare LF": b"POST /echo HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc",
}
# Whitespace around a value and the coding's case carry no meaning: accepted as chunked.
EQUIVALENT = {
    "leading spaces": POST + b"Transfer-Encoding:   chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "tab": POST + b"Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "upper case": POST + b"Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
}


def test_ambiguous_framing_is_refused_and_the_connection_closed(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, "--capture.sample-percent", "100")
    for name, raw in AMBIGUOUS.items():
        got = exchange(sc, raw)  # read to EOF: one response, then the sidecar closes
        assert status_of(got) == 400, name
        assert len(re.findall(rb"(?:^|\r\n)HTTP/1\.[01] \d{3} ", got)) == 1, name
        assert b"smuggled" not in got, name
    for name, raw in EQUIVALENT.items():
        got = exchange(sc, raw.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
        assert status_of(got) == 200 and got.endswith(b"abc"), name
    samples = scrape(sc.admin_url)
    refused = sum(value(samples, REJECTED, reason=r) for r in ("bad_framing", "malformed"))
    assert refused == len(AMBIGUOUS)
    sc.proc.stop()
    log = sc.proc.log()
    assert "Traceback" not in log and "Error handling request" not in log
    assert "smuggled" not in (sc.proc.log_path.parent / "upstream.log").read_text()


# A request line without a version is HTTP/0.9 to llhttp, headers and body parsed after it.
NO_VERSION = {
    "POST without a version": b"POST /echo\r\nContent-Length: 8\r\n\r\n12345678",
    "GET without a version": b"GET /echo\r\n\r\n",
    "explicit HTTP/0.9": b"GET /echo HTTP/0.9\r\n\r\n",
}


def test_request_lines_without_http1_version_are_refused_not_forwarded(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, "--capture.sample-percent", "100")
    for name, raw in NO_VERSION.items():
        got = exchange(sc, raw)
        assert status_of(got) == 400, name
        assert b"without HTTP/1.x version" in got, name
    got = exchange(sc, b"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status_of(got) == 505
    samples = scrape(sc.admin_url)
    assert value(samples, REJECTED, reason="http_version") == len(NO_VERSION) + 1
    # None reached the model server: no request was answered through it, nothing captured.
    answered = sum(
        value(samples, "modeltap_sidecar_requests_total", status_class=c)
        for c in ("1xx", "2xx", "3xx", "4xx", "5xx")
    )
    assert answered == 0
    assert sc.proc.stop() == 0
    assert sc.captured_files() == []
    assert "Traceback" not in sc.proc.log()


# -- connections ----------------------------------------------------------------------------


def test_many_idle_connections_are_cheap_and_capped(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, "--server.header-read-timeout-seconds", "60")
    gauge = "modeltap_sidecar_client_connections"
    assert call_ok(sc)
    before = rss_kib(sc.proc.pid)
    idle: list[socket.socket] = []
    try:
        for _ in range(500):
            idle.append(connect(sc))
        wait_for(lambda: value(scrape(sc.admin_url), gauge) >= 500, what="500 open connections")
        assert call_ok(sc)
        after = rss_kib(sc.proc.pid)
        print(f"\nsidecar RSS: {before} KiB before, {after} KiB with 500 idle connections")
        assert after - before < 64 * 1024  # measured about 1.1 MiB; a generous bound
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: value(scrape(sc.admin_url), gauge) == 0, what="connections closed")

    capped = start_sidecar(upstream, "--server.max-connections", "20", name="capped")
    idle = []
    try:
        for _ in range(20):
            idle.append(connect(capped))
        wait_for(lambda: value(scrape(capped.admin_url), gauge) == 20, what="20 connections")
        got = exchange(capped, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(got) == 503 and b"too many open connections" in got
        for s in idle[:5]:
            s.close()
        wait_for(lambda: value(scrape(capped.admin_url), gauge) == 15, what="slots freed")
        assert call_ok(capped)
    finally:
        for s in idle:
            s.close()
    assert value(scrape(capped.admin_url), "modeltap_sidecar_client_connections_refused_total") == 1


# -- HTTP/1.1 connection semantics ---------------------------------------------------------


def read_responses(s: socket.socket, n: int) -> list[bytes]:
    """``n`` responses with Content-Length, in order, from one connection, however the reads
    cut them (one read may end one response and start the next: read one at a time, the start
    of the next was lost and the reader waited for bytes already read)."""
    data = b""
    out: list[bytes] = []
    while len(out) < n:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
            continue
        length = next(
            int(line.split(b":", 1)[1])
            for line in data[:end].split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        total = end + 4 + length
        while len(data) < total:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        out.append(data[:total])
        data = data[total:]
    assert not data, data[:200]  # nothing was asked beyond these
    return out


def test_pipelined_requests_are_answered_in_order_and_captured(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, "--capture.sample-percent", "100")
    bodies = [b"first", b"second" * 20000, b"third"]  # the middle one over the 64 KiB high water
    raw = b"".join(
        b"POST /echo/%d HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (i, len(body), body)
        for i, body in enumerate(bodies)
    )
    with connect(sc) as s:
        s.sendall(raw)  # all three at once: the second and third wait their turn
        got = read_responses(s, 3)
        for i, (response, body) in enumerate(zip(got, bodies, strict=True)):
            assert status_of(response) == 200
            assert response.endswith(b"\r\n\r\n" + body), i
            assert f"X-Echo-Path: /echo/{i}".encode() in response
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")  # still open and usable
        assert status_of(read_response(s)) == 200
    wait_for(
        lambda: value(scrape(sc.admin_url), "modeltap_sidecar_capture_records_total",
                      outcome="spooled") == 4,
        what="four records spooled",
    )  # fmt: skip


def test_expect_100_continue_is_answered_before_the_body(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream)
    with connect(sc) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        interim = s.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        response = read_response(s)
    assert status_of(response) == 200 and response.endswith(b"hello")
    seen = response.split(b"X-Echo-Headers: ", 1)[1].split(b"\r\n", 1)[0].lower()
    assert b"expect" not in seen  # answered here, not passed on


def test_request_fields_reach_the_model_server_as_sent_but_hop_by_hop(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    """Odd casing, repeated fields and order reach the model server as the client sent them;
    hop-by-hop fields, and a field the Connection header names, do not."""
    sc = start_sidecar(upstream)
    with connect(sc) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nhOsT: x\r\nX-Rep: 1\r\nConnection: keep-alive, x-DROP\r\n"
            b"x-rep: 2\r\nX-Drop: d\r\nTE: trailers\r\ncontent-TYPE: text/csv\r\n"
            b"Content-Length: 3\r\nX-REP: 3, 4\r\n\r\nabc"
        )
        response = read_response(s)
    assert status_of(response) == 200 and response.endswith(b"abc")
    seen = orjson.loads(response.split(b"X-Echo-Headers: ", 1)[1].split(b"\r\n", 1)[0])
    # The echo server (aiohttp) spells the names it knows its own way: those compare lower-case.
    known = {"host", "content-type", "content-length"}
    assert [[k.lower() if k.lower() in known else k, v] for k, v in seen] == [
        ["host", "x"],
        ["X-Rep", "1"],
        ["x-rep", "2"],
        ["content-type", "text/csv"],
        ["content-length", "3"],
        ["X-REP", "3, 4"],
    ]


def test_half_closed_client_still_gets_its_answer(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream)
    with connect(sc) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        s.shutdown(socket.SHUT_WR)  # done sending; still reading
        got = read_all(s)
    assert status_of(got) == 200 and got.endswith(b"abc")


def test_http10_keep_alive_when_asked(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream)
    with connect(sc) as s:
        for _ in range(2):
            s.sendall(b"GET /ping HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            response = read_response(s)
            assert status_of(response) == 200
            assert b"\r\nConnection: keep-alive\r\n" in response
        s.sendall(b"GET /ping HTTP/1.0\r\nHost: x\r\n\r\n")  # without it: closed after
        got = read_all(s)
    assert status_of(got) == 200 and b"\r\nConnection: close\r\n" in got
