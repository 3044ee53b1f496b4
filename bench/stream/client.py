"""The load side of bench/stream: ``c`` concurrent keep-alive connections (their starts spread
out), each reading streams one after the other, timing every one: time to first body byte
(request written to the first byte after the head) and the gaps between successive reads of its
body (one per chunk the origin wrote when the network keeps up).

A connection's first stream is timed apart (``ttfb_first``): its request is written as soon as
the client's connect returns, so through the sidecar its time includes the sidecar accepting the
connection and, when its pool has no idle connection, connecting to the origin, where direct the
origin only accepts. Kept-alive streams (``ttfb``) time the same event on both paths: a request on
an open connection to the first body byte."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

END = b"0\r\n\r\n"


@dataclass
class Timings:
    ttfb: list[float] = field(default_factory=list)  # streams on a kept-alive connection
    ttfb_first: list[float] = field(default_factory=list)  # each connection's first stream
    gaps: list[float] = field(default_factory=list)
    streams: int = 0
    failures: int = 0


async def _one_connection(
    host: str, port: int, path: str, streams: int, out: Timings, delay: float
) -> None:
    await asyncio.sleep(delay)
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    try:
        for k in range(streams):
            ttfb = out.ttfb if k else out.ttfb_first
            t0 = time.perf_counter()
            writer.write(request)
            head = b""
            while b"\r\n\r\n" not in head:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed before the head")
                head += data
            _, _, body = head.partition(b"\r\n\r\n")
            last: float | None = None
            tail = body
            if body:
                last = time.perf_counter()
                ttfb.append(last - t0)
            while not tail.endswith(END):
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed mid-stream")
                now = time.perf_counter()
                if last is None:
                    ttfb.append(now - t0)
                else:
                    out.gaps.append(now - last)
                last = now
                tail = (tail + data)[-16:]
            out.streams += 1
    except (ConnectionError, OSError):
        out.failures += 1
    finally:
        writer.close()


async def run(
    host: str, port: int, path: str, connections: int, streams_each: int, spread: float
) -> Timings:
    """``connections`` connections, the k-th starting at ``k / connections * spread`` seconds:
    streams that start at one instant would measure the queue of that burst, not the proxy."""
    out = Timings()
    await asyncio.gather(
        *(
            _one_connection(host, port, path, streams_each, out, k / connections * spread)
            for k in range(connections)
        )
    )
    return out
