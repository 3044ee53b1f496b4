"""A fault injector in front of a real server (``python -m harness.faulty_proxy PORT TARGET``).

Requests pass through untouched (Host included, so S3 signatures stay valid) until a fault is armed
with ``POST /__fault__`` ``{"status": 503, "code": "SlowDown", "count": 3, "method": "PUT"}`` or
``{"reset": true, "count": 2}`` (the connection is cut without an answer). ``GET /__fault__``
returns how many faults were injected. The server behind it is real; only the faults are made up.
"""

from __future__ import annotations

import sys
import urllib.request
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from sidecar.headers import HOP_BY_HOP

STATE: dict[str, Any] = {"armed": None, "injected": 0}
SESSION = web.AppKey("session", aiohttp.ClientSession)


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """A copy of ``headers`` without hop-by-hop fields and the fields Connection names."""
    drop = set(HOP_BY_HOP)
    for value in headers.getall("Connection", ()):
        drop.update(tok.strip().lower() for tok in value.split(",") if tok.strip())
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


async def control(request: web.Request) -> web.Response:
    if request.method == "POST":
        STATE["armed"] = await request.json()
        return web.json_response({"armed": STATE["armed"]})
    return web.json_response({"injected": STATE["injected"], "armed": STATE["armed"]})


def arm(proxy: str, **fault: object) -> None:
    """Arm a fault on the running injector at ``proxy`` (its base URL); ``count=0`` disarms."""
    request = urllib.request.Request(f"{proxy}/__fault__", data=orjson.dumps(fault))
    urllib.request.urlopen(request, timeout=5).close()


def injected(proxy: str) -> int:
    """How many faults the injector at ``proxy`` has injected so far."""
    with urllib.request.urlopen(f"{proxy}/__fault__", timeout=5) as resp:
        return int(orjson.loads(resp.read())["injected"])


def create_app(target: str) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path == "/__fault__":
            return await control(request)
        fault = STATE["armed"]
        if (
            fault
            and fault.get("count", 0) > 0
            and fault.get("method", request.method) == request.method
        ):
            fault["count"] -= 1
            STATE["injected"] += 1
            await request.read()
            if fault.get("reset"):
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            code = fault.get("code", "InternalError")
            body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>injected</Message></Error>'
            return web.Response(
                status=int(fault.get("status", 500)), text=body, content_type="application/xml"
            )
        session = request.app[SESSION]
        async with session.request(
            request.method,
            target + request.raw_path,
            headers=end_to_end(request.headers),
            data=await request.read(),
            allow_redirects=False,
        ) as up:
            answer = await up.read()
            return web.Response(status=up.status, headers=end_to_end(up.headers), body=answer)

    async def session_ctx(app: web.Application) -> Any:
        app[SESSION] = aiohttp.ClientSession(
            auto_decompress=False, skip_auto_headers=("User-Agent", "Content-Type")
        )
        yield
        await app[SESSION].close()

    app = web.Application(client_max_size=1024**3)
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(sys.argv[2].rstrip("/")),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
    )
