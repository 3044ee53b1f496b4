"""The streaming origin of bench/stream: every request gets an event stream of ``n`` chunks of
``size`` bytes, ``gap`` seconds apart (on an absolute schedule, so sleeps do not drift), chunked,
over keep-alive HTTP/1.1. ``GET /ping`` answers ``ok``.

Run as ``python bench/stream/origin.py PORT N SIZE GAP``: a raw asyncio protocol on uvloop, so the
origin's own cost stays small next to what is measured.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
PONG = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


def event(i: int, size: int) -> bytes:
    """``data: <i><padding>\\n\\n`` of exactly ``size`` bytes (at least 12)."""
    body = f"{i:06d}".encode()
    pad = size - len(b"data: ") - len(body) - 2
    return b"data: " + body + b"x" * max(0, pad) + b"\n\n"


class Origin(asyncio.Protocol):
    def __init__(self, n: int, size: int, gap: float) -> None:
        self.n, self.size, self.gap = n, size, gap
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            assert self.transport is not None
            if path == b"/ping":
                self.transport.write(PONG)
            else:
                self.task = asyncio.ensure_future(self.stream())

    async def stream(self) -> None:
        t = self.transport
        assert t is not None
        loop = asyncio.get_running_loop()
        t.write(HEAD)
        start = loop.time()
        for i in range(self.n):
            chunk = event(i, self.size)
            t.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            delay = start + (i + 1) * self.gap - loop.time()
            if i + 1 < self.n and delay > 0:
                await asyncio.sleep(delay)
        t.write(b"0\r\n\r\n")


async def main(port: int, n: int, size: int, gap: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Origin(n, size, gap), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port, n, size, gap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    uvloop.run(main(port, n, size, gap))
