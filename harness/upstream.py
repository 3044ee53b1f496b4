"""A real HTTP upstream for proxy tests (run as ``python -m harness.upstream PORT``).

Routes cover what a faithful proxy must carry: echoed bodies and headers, large and streamed
bodies, any status, slowness, HEAD, a response without Content-Type, a connection cut mid-body,
and event streams (gated event by event, fixed deltas, large).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

import orjson
from aiohttp import web


def pattern(n: int) -> bytes:
    """Deterministic non-text bytes of length n."""
    block = hashlib.sha256(b"modeltap").digest() * 2048  # 64 KiB
    reps, rest = divmod(n, len(block))
    return block * reps + block[:rest]


async def echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {
        "X-Echo-Method": request.method,
        "X-Echo-Path": request.raw_path,
        "X-Echo-Headers": orjson.dumps([[k, v] for k, v in request.headers.items()]).decode(),
        "X-Custom": "a, b",
    }
    ctype = request.headers.get("Content-Type", "application/octet-stream")
    status = int(request.query.get("status", "200"))
    return web.Response(status=status, body=body, headers={**headers, "Content-Type": ctype})


async def big(request: web.Request) -> web.StreamResponse:
    n = int(request.query["n"])
    return web.Response(body=pattern(n), content_type="application/octet-stream")


async def chunked(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "300000"))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    data = orjson.dumps({"blob": pattern(n).hex()})
    for i in range(0, len(data), 50_000):
        await resp.write(data[i : i + 50_000])
    await resp.write_eof()
    return resp


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(
        status=code, text=f"status {code}\n", reason="Custom Reason" if code == 599 else None
    )


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "2")))
    return web.Response(text="slow\n")


async def no_type(request: web.Request) -> web.StreamResponse:
    resp = web.Response(body=b"raw bytes")
    resp.headers.popall("Content-Type", None)
    resp._headers.pop("Content-Type", None)
    return resp


async def cut(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Content-Length": "100000"})
    await resp.prepare(request)
    await resp.write(b"x" * 1000)
    assert request.transport is not None
    request.transport.close()
    return resp


# Gated event streams: each event waits for a POST /release?id=X, so a test can prove an event
# reached the client before the next one existed, or hang up mid-stream and see what the upstream
# saw (GET /gate?id=X: running, finished or client_gone).
_GATES: dict[str, asyncio.Queue[None]] = {}
_GATE_STATE: dict[str, str] = {}


def _gate(gate_id: str) -> asyncio.Queue[None]:
    return _GATES.setdefault(gate_id, asyncio.Queue())


async def sse_gated(request: web.Request) -> web.StreamResponse:
    gate_id = request.query["id"]
    n = int(request.query.get("n", "5"))
    gate = _gate(gate_id)
    _GATE_STATE[gate_id] = "running"
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        for i in range(n):
            await gate.get()
            event = {"choices": [{"index": 0, "delta": {"content": f"t{i} "}}], "model": "gated"}
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
    except ConnectionResetError:
        _GATE_STATE[gate_id] = "client_gone"
        return resp
    _GATE_STATE[gate_id] = "finished"
    return resp


async def release(request: web.Request) -> web.Response:
    _gate(request.query["id"]).put_nowait(None)
    return web.Response(text="ok\n")


async def gate_state(request: web.Request) -> web.Response:
    return web.Response(text=_GATE_STATE.get(request.query["id"], "unknown"))


async def sse_fixed(request: web.Request) -> web.StreamResponse:
    """An OpenAI-style stream of the given deltas (``?d=a&d=b``), with usage and [DONE]."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    deltas = request.query.getall("d", [])
    for i, text in enumerate(deltas):
        reason = "stop" if i == len(deltas) - 1 else None
        event = {"model": "fixed", "choices": [{"index": 0, "delta": {"content": text},
                                               "finish_reason": reason}]}  # fmt: skip
        await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
    usage = {"prompt_tokens": 3, "completion_tokens": len(deltas)}
    await resp.write(b"data: " + orjson.dumps({"model": "fixed", "choices": [], "usage": usage}))
    await resp.write(b"\n\ndata: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def sse_big(request: web.Request) -> web.StreamResponse:
    """``n`` SSE events of about 100 bytes each, as fast as the client takes them."""
    n = int(request.query.get("n", "1000"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(n):
        event = {"choices": [{"index": 0, "delta": {"content": f"{i:08d}" + "x" * 60}}]}
        await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def ping(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_app() -> web.Application:
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/echo{tail:.*}", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/chunked", chunked)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/slow", slow)
    app.router.add_get("/notype", no_type)
    app.router.add_get("/cut", cut)
    app.router.add_get("/ping", ping)
    app.router.add_route("*", "/sse-gated", sse_gated)
    app.router.add_post("/release", release)
    app.router.add_get("/gate", gate_state)
    app.router.add_route("*", "/sse-fixed", sse_fixed)
    app.router.add_route("*", "/sse-big", sse_big)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
