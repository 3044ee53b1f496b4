"""A streamed answer's head and first piece leave the proxy in one write.

The proxy port's connection runs over a transport that records each write call (no client
socket); the model server is a raw asyncio server on 127.0.0.1 that sends its head and first
event in one segment, then holds the rest until the test lets it go. Two writes (head, then
event) cost a syscall and often wake the client twice before it holds its first body byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from sidecar.config import CaptureConfig, SidecarConfig
from sidecar.metrics import SidecarMetrics
from sidecar.proxy import Proxy
from sidecar.server import ProxyServer
from sidecar.upstream import UpstreamPool
from tests.fuzz.test_http_server import FakeTransport

EVENT = b"data: {}\n\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


class RecordingTransport(FakeTransport):
    """Keeps each write call's bytes (a writelines is one call: one send on a real socket)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.calls: list[bytes] = []

    def write(self, data: bytes) -> None:
        super().write(data)
        self.calls.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        joined = b"".join(parts)
        super().write(joined)
        self.calls.append(joined)


async def _until(check: Any, what: str) -> None:
    for _ in range(500):  # 5 s at most
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_head_and_first_event_go_in_one_write_and_the_rest_as_it_comes() -> None:
    release = asyncio.Event()

    async def model(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
        await release.wait()
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(EVENT), EVENT))
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(model, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    config = SidecarConfig(capture=CaptureConfig(enabled=False))
    metrics = SidecarMetrics(CollectorRegistry())
    pool = UpstreamPool(
        f"http://127.0.0.1:{port}",
        max_connections=4,
        keepalive_timeout=30,
        connect_timeout=1,
        timeout=5,
    )
    proxy = Proxy(config, metrics, pool, None)
    server = ProxyServer(proxy.handle, config.server, metrics)
    conn = server()
    transport = RecordingTransport(asyncio.get_running_loop())
    transport.protocol = conn
    conn.connection_made(transport)  # type: ignore[arg-type]
    try:
        conn.data_received(b"GET /v1/chat/completions HTTP/1.1\r\nHost: m\r\n\r\n")
        await _until(lambda: transport.calls, "the answer's first write")
        await asyncio.sleep(0.05)  # a second write for the first event would come now
        first = transport.calls[0]
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\ntransfer-encoding: chunked\r\n".lower() in first.lower()
        assert first.endswith(b"\r\n\r\n%x\r\n%s\r\n" % (len(EVENT), EVENT))
        assert len(transport.calls) == 1  # the second event is not made yet: nothing else went
        release.set()
        await _until(lambda: transport.out.endswith(b"0\r\n\r\n"), "the end of the stream")
        body = bytes(transport.out).partition(b"\r\n\r\n")[2]
        assert body == b"%x\r\n%s\r\n" % (len(EVENT), EVENT) * 2 + b"0\r\n\r\n"
    finally:
        transport.close()
        await pool.close()
        upstream.close()
        await upstream.wait_closed()
