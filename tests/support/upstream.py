"""A real HTTP upstream for proxy tests (run as ``python -m tests.support.upstream PORT``).

Routes cover what a faithful proxy must carry: echoed bodies and headers, large and streamed
bodies, any status, slowness, HEAD, a response without Content-Type, a connection cut mid-body.
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
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
