"""The callback route (``Proxy.answer_from_callbacks``) answers exactly as the coroutine route.

Each scenario runs twice against the same model server (a raw asyncio server on 127.0.0.1 whose
behaviour the path chooses): once with the route and once without it (``ProxyServer`` without
``callbacks``: every request in a task). The client's bytes, the model server's bytes, the
metrics and the capture items must be the same; the route's counters say which way each
request went (answered from callbacks, handed over to a task, or never taken).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import sidecar.proxy
from modeltap.core.record import CaptureItem
from sidecar.compiled import compiled_modules
from sidecar.config import CaptureConfig, SidecarConfig, SpoolConfig
from sidecar.metrics import SidecarMetrics
from sidecar.proxy import SMALL_BODY_BYTES, Proxy
from sidecar.server import ProxyServer
from sidecar.spool import SpoolUsage, SpoolWriter
from sidecar.upstream import UpstreamPool

BODY = b"5.1,3.5,1.4,0.2\n" * 64  # 1 KiB
ITEM_FIELDS = (
    "method", "path", "status", "inference_id", "target_model", "input_body",
    "input_content_type", "output_body", "output_content_type", "request_headers",
    "response_headers", "stream", "genai", "record", "input_recorded", "output_recorded",
)  # fmt: skip


class Model:
    """The model server: answers by path; records the bytes of every request it reads."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.release = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                if b"transfer-encoding: chunked" in head.lower():
                    body = await reader.readuntil(b"0\r\n\r\n")
                self.received.append(head + body)
                target = head.split(b" ")[1]
                if not await self.answer(target, head, body, served, writer):
                    return
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(
        self, target: bytes, head: bytes, body: bytes, served: int, writer: asyncio.StreamWriter
    ) -> bool:
        out = b"model:" + body
        if target.startswith(b"/close") and served:
            return False  # a reused connection closed on receiving the request
        if target.startswith(b"/slow"):
            await asyncio.sleep(0.2)
        if target.startswith(b"/silent"):
            await self.release.wait()
            return False
        if target.startswith(b"/split"):  # head, then the body a moment later
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n" % len(out))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(out)
        elif target.startswith(b"/chunked"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(out), out)
            )
        elif target.startswith(b"/nocontent"):
            writer.write(b"HTTP/1.1 204 No Content\r\nX-Model: a\r\n\r\n")
        elif head.startswith(b"HEAD "):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 99\r\n\r\n")
        else:
            writer.write(
                b"HTTP/1.1 200 Fine\r\nContent-Type: text/csv\r\nX-Model: a\r\nX-Model: b\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(out), out)
            )
        await writer.drain()
        return True


class Rig:
    """A proxy listening on 127.0.0.1 in front of ``Model``, with or without the route; its
    spool writer is not started, so captured items stay in its queue to be compared."""

    def __init__(self, model_port: int, tmp: Path, route: bool, **pool: Any) -> None:
        self.config = SidecarConfig(
            capture=CaptureConfig(
                sample_percent=100,
                headers=("x-model", "content-type"),
                queue_max_age_seconds=60,  # (nothing writes the queue here)
            )
        )
        self.metrics = SidecarMetrics(CollectorRegistry())
        self.writer = SpoolWriter(
            SpoolConfig(dir=tmp), self.config.capture, self.metrics, SpoolUsage(lambda _v: None)
        )
        opts: dict[str, Any] = {"max_connections": 8, "keepalive_timeout": 30,
                                "connect_timeout": 1, "timeout": 5, **pool}  # fmt: skip
        self.pool = UpstreamPool(f"http://127.0.0.1:{model_port}", **opts)
        self.proxy = Proxy(self.config, self.metrics, self.pool, self.writer)
        self.server = ProxyServer(
            self.proxy.handle,
            self.config.server,
            self.metrics,
            self.proxy.answer_from_callbacks if route else None,
        )
        self.port = 0

    async def start(self) -> None:
        self.port = (await self.server.listen("127.0.0.1", 0))[1]

    def route(self) -> tuple[int, int, int]:
        p = self.proxy
        return p.callback_started, p.callback_answered, p.callback_handed_over

    def items(self) -> list[tuple[Any, ...]]:
        """The queued capture items' fields (a stream's timings without its times)."""
        out = []
        for item in self.writer._items:
            fields = [getattr(item, f) for f in ITEM_FIELDS]
            t = item.stream
            if t is not None:
                fields[ITEM_FIELDS.index("stream")] = (t.chunks, t.size, t.end, t.truncated)
            out.append(tuple(fields))
        return out

    def counts(self) -> dict[str, float]:
        """Every sample but the latencies' sums and buckets (times differ between runs)."""
        out = {}
        for family in self.metrics.registry.collect():
            name = family.name
            if not name.startswith("modeltap_sidecar") or "spool" in name or "age" in name:
                continue
            for s in family.samples:
                if not s.name.endswith(("_sum", "_bucket", "_created")):
                    out[s.name + repr(sorted(s.labels.items()))] = s.value
        return out


def post(path: str, body: bytes = BODY, extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: m\r\nContent-Type: text/csv\r\nX-Model: c\r\n%s"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), extra, len(body), body)
    )


def get(path: str, method: str = "GET") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: m\r\n\r\n" % (method.encode(), path.encode())


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if head_only:
        return head
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return head + await asyncio.wait_for(reader.readexactly(int(line[15:])), 5)
    if b"chunked" in head.lower():
        return head + await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
    return head


Scenario = Callable[[Rig, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[list[bytes]]]


async def both_routes(
    tmp_path: Path, scenario: Scenario, **pool: Any
) -> tuple[Rig, Rig, list[bytes], Model]:
    """Run ``scenario`` (after a warm-up request that leaves an idle model connection) with
    the route and without; asserts they agree; returns the rig with the route, the one
    without, the answers and the model server."""
    results = []
    for route in (True, False):
        model = Model()
        upstream = await asyncio.start_server(model.serve, "127.0.0.1", 0)
        rig = Rig(upstream.sockets[0].getsockname()[1], tmp_path / str(route), route, **pool)
        await rig.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        try:
            writer.write(post("/warm"))
            warm = await read_answer(reader)
            assert warm.startswith(b"HTTP/1.1 200 Fine"), warm
            answers = await scenario(rig, reader, writer)
        finally:
            model.release.set()
            writer.close()
            await rig.server.shutdown(0.5)
            await rig.pool.close()
            upstream.close()
            await upstream.wait_closed()
        await asyncio.sleep(0.05)  # let the connections' callbacks run out
        results.append((rig, answers, model))
    (fast, answers, model), (slow, slow_answers, slow_model) = results
    assert answers == slow_answers
    assert model.received == slow_model.received
    assert [i[1] for i in fast.items()] == [i[1] for i in slow.items()]
    assert fast.items() == slow.items()
    assert fast.counts() == slow.counts()
    assert slow.route() == (0, 0, 0)
    return fast, slow, answers, model


async def test_a_small_request_is_answered_from_callbacks(tmp_path: Path) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        writer.write(post("/a?x=1", extra=b"Connection: keep-alive\r\nX-Id: 7\r\n"))
        one = await read_answer(reader)
        writer.write(get("/b"))
        return [one, await read_answer(reader)]

    fast, _slow, answers, model = await both_routes(tmp_path, scenario)
    assert fast.route() == (2, 2, 0)  # the warm-up had no idle connection: the task route
    assert answers[0] == (
        b"HTTP/1.1 200 Fine\r\nContent-Type: text/csv\r\nX-Model: a\r\nX-Model: b\r\n"
        b"Content-Length: %d\r\n\r\nmodel:%s" % (len(BODY) + 6, BODY)
    )
    assert model.received[1] == (
        b"POST /a?x=1 HTTP/1.1\r\nHost: m\r\nContent-Type: text/csv\r\nX-Model: c\r\nX-Id: 7\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    items = fast.items()
    assert len(items) == 3
    assert items[1][ITEM_FIELDS.index("input_body")] == BODY
    assert items[1][ITEM_FIELDS.index("response_headers")] == {
        "content-type": "text/csv",
        "x-model": "a, b",
    }


async def test_pipelined_small_requests_are_answered_in_order_from_callbacks(
    tmp_path: Path,
) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        writer.write(post("/p1", b"1") + post("/p2", b"22") + post("/p3", b"333"))
        return [await read_answer(reader) for _ in range(3)]

    fast, _slow, answers, _model = await both_routes(tmp_path, scenario)
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"model:1", b"model:22", b"model:333"]
    assert fast.route() == (3, 3, 0)


async def test_heads_and_bodiless_answers_from_callbacks(tmp_path: Path) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        writer.write(post("/nocontent"))
        one = await read_answer(reader)
        writer.write(get("/h", "HEAD"))  # (its model connection is not reused after it)
        return [one, await read_answer(reader, head_only=True)]

    fast, _slow, answers, _model = await both_routes(tmp_path, scenario)
    assert answers[0].startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Content-Length: 99\r\n" in answers[1]
    assert fast.route() == (2, 2, 0)


async def test_an_answer_not_all_here_or_streamed_is_handed_to_a_task(tmp_path: Path) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        writer.write(post("/split"))
        one = await read_answer(reader)
        writer.write(post("/chunked"))
        two = await read_answer(reader)
        writer.write(post("/after"))  # the connection is reusable after both
        return [one, two, await read_answer(reader)]

    fast, _slow, answers, _model = await both_routes(tmp_path, scenario)
    assert answers[0].endswith(b"model:" + BODY)
    assert b"Transfer-Encoding: chunked" in answers[1]
    assert fast.route() == (3, 1, 2)


async def test_failures_before_the_answer_are_handed_to_a_task(tmp_path: Path) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        writer.write(post("/close"))  # a POST is never sent twice: 502
        one = await read_answer(reader)
        writer.write(post("/warm-again"))  # (a new idle connection, to be reused)
        await read_answer(reader)
        writer.write(get("/close"))  # an idempotent request is sent again on a new connection
        return [one, await read_answer(reader)]

    fast, _slow, answers, model = await both_routes(tmp_path, scenario)
    assert answers[0].startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"X-Modeltap-Error: upstream" in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 200 Fine\r\n")
    assert [r.split(b" ")[1] for r in model.received] == [
        b"/warm", b"/close", b"/warm-again", b"/close", b"/close",
    ]  # fmt: skip
    # /close (POST) handed over; /warm-again: no idle connection left (task route); the GET
    # handed over and resent
    assert fast.route() == (2, 0, 2)
    assert fast.counts()["modeltap_sidecar_upstream_errors_total[('reason', 'disconnected')]"] == 1


async def test_a_model_server_that_never_answers_gets_504(tmp_path: Path) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        writer.write(post("/silent"))
        return [await read_answer(reader)]

    fast, _slow, answers, _model = await both_routes(tmp_path, scenario, timeout=0.3)
    assert answers[0].startswith(b"HTTP/1.1 504 Gateway Timeout\r\n")
    assert fast.route() == (1, 0, 1)


async def test_requests_the_route_does_not_take(tmp_path: Path) -> None:
    big = b"x" * (SMALL_BODY_BYTES + 1)

    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        answers = []
        # A body over the limit held whole; a chunked body; a body that has not all arrived.
        writer.write(post("/big", big))
        answers.append(await read_answer(reader))
        writer.write(
            b"POST /chunked-in HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        )
        answers.append(await read_answer(reader))
        whole = post("/late")
        writer.write(whole[:-10])
        await asyncio.sleep(0.05)
        writer.write(whole[-10:])
        answers.append(await read_answer(reader))
        return answers

    fast, _slow, answers, model = await both_routes(tmp_path, scenario)
    assert answers[0].endswith(b"model:" + big)
    assert model.received[2].endswith(b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert fast.route() == (0, 0, 0)


async def test_no_idle_connection_or_no_free_slot_leaves_it_to_a_task(tmp_path: Path) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        # The one slot is busy with /slow on another client connection.
        r2, w2 = await asyncio.open_connection("127.0.0.1", rig.port)
        w2.write(post("/slow"))
        for _ in range(100):
            if rig.proxy.callback_started:
                break
            await asyncio.sleep(0.01)
        writer.write(post("/waits"))
        answers = [await read_answer(r2), await read_answer(reader)]
        w2.close()
        return answers

    fast, _slow, answers, _model = await both_routes(tmp_path, scenario, max_connections=1)
    assert answers[0].startswith(b"HTTP/1.1 200 Fine\r\n")
    assert answers[1].startswith(b"HTTP/1.1 200 Fine\r\n")
    assert fast.route() == (1, 1, 0)  # /slow took the route; /waits waited in a task


async def test_a_client_gone_before_the_answer_is_still_counted_and_captured(
    tmp_path: Path,
) -> None:
    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        _r2, w2 = await asyncio.open_connection("127.0.0.1", rig.port)
        w2.write(post("/split"))
        await w2.drain()
        await asyncio.sleep(0.01)
        w2.close()
        for _ in range(100):
            if len(rig.writer._items) == 2:
                break
            await asyncio.sleep(0.01)
        writer.write(post("/still"))
        return [await read_answer(reader)]

    fast, _slow, _answers, _model = await both_routes(tmp_path, scenario)
    assert len(fast.items()) == 3
    assert fast.route()[0] == 2


@pytest.mark.skipif(
    "sidecar.proxy" in compiled_modules(), reason="compiled code binds CaptureItem: not patchable"
)
async def test_a_pair_the_writer_would_shed_is_counted_and_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saturated writer sheds most pairs: the request path asks it for room first and builds
    no item for a pair it would drop, which is counted as dropped_queue_full as before."""
    built: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> CaptureItem:
        built.append(1)
        return CaptureItem(*args, **kwargs)

    monkeypatch.setattr(sidecar.proxy, "CaptureItem", counted)

    async def scenario(rig: Rig, reader: Any, writer: Any) -> list[bytes]:
        rig.writer._max_queue = 2  # the warm-up's item and one more
        built.clear()
        answers = []
        for path in ("/a", "/b", "/chunked", "/split"):
            writer.write(post(path))
            answers.append(await read_answer(reader))
        runs.append(len(built))
        return answers

    runs: list[int] = []
    for rig in (await both_routes(tmp_path, scenario))[:2]:
        assert [i[1] for i in rig.items()] == ["/warm", "/a"]
        counts = rig.counts()
        shed = counts["modeltap_sidecar_capture_records_total[('outcome', 'dropped_queue_full')]"]
        assert shed == 3
    assert runs == [1, 1]  # on each route the item of "/a"; the shed three were never built
