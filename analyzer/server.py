"""The analyzer's HTTP port: /metrics, /healthz, the reports (read-only) and optional extra routes.

Reports are read from the reports store on each request, so what the port shows is what the
store holds (the same files a CronJob run wrote elsewhere are served just as well). Only GET
reaches the store, keys with empty or dot segments or control characters (``%00``, which no report
name holds and a filesystem cannot open) answer 404, and every report is served with
a Content-Security-Policy that forbids scripts and any request leaving the page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from modeltap.core.errors import StoreError
from modeltap.core.store.base import Store

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "png": "image/png",
    "jsonl": "application/x-ndjson",
}
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def report_key(tail: str) -> str | None:
    """The store key of ``/reports/<tail>``; a directory means its index.html; None if unsafe."""
    key = f"{tail}index.html" if tail == "" or tail.endswith("/") else tail
    parts = key.split("/")
    if any(p in ("", ".", "..") or "\\" in p for p in parts) or _CONTROL.search(key):
        return None
    return key


def build_app(
    registry: CollectorRegistry,
    reports: Store | None,
    extra_routes: Callable[[web.Application], Any] | None = None,
) -> web.Application:
    """The aiohttp application of the analyzer's port."""

    async def metrics(_r: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_r: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def report(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if _CONTROL.search(tail):  # before the redirect: no such name, and no such Location
            raise web.HTTPNotFound(text="no such report\n")
        if tail and "." not in tail.rsplit("/", 1)[-1] and not tail.endswith("/"):
            raise web.HTTPFound(f"/reports/{tail}/")  # a directory without its slash
        key = report_key(tail)
        if key is None or reports is None:
            raise web.HTTPNotFound(text="no such report\n")
        try:
            body = await reports.get(key)
        except StoreError as exc:
            if exc.reason == "not_found":
                raise web.HTTPNotFound(text="no such report\n") from None
            raise web.HTTPBadGateway(text=f"reading the report failed: {exc.reason}\n") from None
        ctype = CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
        return web.Response(body=body, headers={"Content-Type": ctype, **REPORT_HEADERS})

    async def reports_root(_r: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/reports/")

    app = web.Application(client_max_size=16 << 20)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/reports", reports_root)
    app.router.add_get("/reports/{tail:.*}", report)
    if extra_routes is not None:
        extra_routes(app)
    return app
