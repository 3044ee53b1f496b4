"""The yardstick: the least a Python forwarder on uvloop and httptools does per request.

Not part of the product. It parses a request, sends it on a pooled upstream connection, parses
the answer and writes it back, with Content-Length framing only: no capture, no metrics, no
limits, no timeouts, no streaming, no error handling. What the sidecar spends beyond it is the
price of what it does (or of how it does it); what nginx spends below it is the price of Python.

    python bench/proxy/floor.py UPSTREAM_HOST UPSTREAM_PORT LISTEN_PORT
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

_DROP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})


def _message(first_line: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    out = [first_line]
    out.extend(n + b": " + v + b"\r\n" for n, v in headers if n.lower() not in _DROP)
    out.append(b"Content-Length: %d\r\n\r\n" % len(body))
    out.append(body)
    return b"".join(out)


class Upstream(asyncio.Protocol):
    def __init__(self, pool: list[Upstream]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.client: Downstream | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.headers, self.body = [], []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        status = b"HTTP/1.1 %d OK\r\n" % self.parser.get_status_code()
        if client is not None:
            client.transport.write(_message(status, self.headers, b"".join(self.body)))
        self.pool.append(self)


class Downstream(asyncio.Protocol):
    def __init__(self, pool: list[Upstream], target: tuple[str, int]) -> None:
        self.pool = pool
        self.target = target
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        line = self.parser.get_method() + b" " + self.url + b" HTTP/1.1\r\n"
        data = _message(line, self.headers, b"".join(self.body))
        if self.pool:
            up = self.pool.pop()
            up.client = self
            up.transport.write(data)
        else:
            asyncio.get_running_loop().create_task(self._connect(data))

    async def _connect(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, up = await loop.create_connection(lambda: Upstream(self.pool), *self.target)
        up.client = self
        up.transport.write(data)


async def serve(upstream_host: str, upstream_port: int, port: int) -> None:
    loop = asyncio.get_running_loop()
    pool: list[Upstream] = []
    target = (upstream_host, upstream_port)
    server = await loop.create_server(lambda: Downstream(pool, target), "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
