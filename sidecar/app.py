"""Wiring and lifecycle of the sidecar process.

Start-up: validate the store (one clear error if it is unusable), recover segments a crash left
open, start the spool writer thread and the uploader task, then open the admin port and the proxy
port. Shutdown on SIGTERM/SIGINT, in order: readiness goes to 503; the proxy keeps accepting and
serving for ``server.shutdown_delay_seconds`` (answers close their connections); then it stops
accepting and waits up to ``server.shutdown_timeout_seconds`` for in-flight requests; the writer
drains its queue and seals the open segment; the uploader stores what it can within
``store.shutdown_grace_seconds``; anything left stays on disk for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from modeltap.core.store import Store, open_store
from sidecar.compiled import MODULES, compiled_modules
from sidecar.config import SidecarConfig
from sidecar.genai import GenAIMetrics, GenAIReader
from sidecar.metrics import SidecarMetrics
from sidecar.proxy import Proxy
from sidecar.redact import build_redactor
from sidecar.server import ProxyServer
from sidecar.spool import SpoolUsage, SpoolWriter, prepare_spool_dir, recover
from sidecar.uploader import Uploader
from sidecar.upstream import UpstreamPool

log = logging.getLogger("sidecar")


@dataclass
class Sidecar:
    """A running sidecar: what a test or ``main`` needs to reach and stop it."""

    config: SidecarConfig
    metrics: SidecarMetrics
    store: Store
    writer: SpoolWriter
    uploader: Uploader
    proxy_url: str = ""
    admin_url: str = ""
    ready: bool = False
    _server: ProxyServer | None = None
    _runners: list[web.BaseRunner] = field(default_factory=list)
    _pool: UpstreamPool | None = None
    _upload_task: asyncio.Task[None] | None = None

    async def stop(self) -> int:
        """Graceful shutdown; returns the number of segments left on disk."""
        self.ready = False  # /readyz answers 503 from now on
        (admin_runner,) = self._runners
        delay = self.config.server.shutdown_delay_seconds
        if self._server is not None and delay > 0:
            # Clients that have not yet learnt the pod is going (endpoints, load balancers) are
            # still served; each answer closes its connection so keep-alive clients move on.
            self._server.drain()
            log.info("draining: serving for %.1fs more while /readyz answers 503", delay)
            await asyncio.sleep(delay)
        if self._server is not None:  # stop accepting, finish in-flight requests
            await self._server.shutdown(self.config.server.shutdown_timeout_seconds)
        log.debug("proxy stopped")
        if self._pool is not None:
            await self._pool.close()
        await asyncio.to_thread(self.writer.stop)
        log.debug("spool writer stopped")
        if self._upload_task is not None:
            self._upload_task.cancel()
            await asyncio.gather(self._upload_task, return_exceptions=True)
        left = await self.uploader.drain(self.config.store.shutdown_grace_seconds)
        log.debug("uploader drained")
        await self.store.close()
        await admin_runner.cleanup()
        return left


def admin_app(sidecar: Sidecar, registry: CollectorRegistry) -> web.Application:
    """The admin port: Prometheus metrics and Kubernetes probes. It never serves captured data."""

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        if sidecar.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def _upstream_pool(config: SidecarConfig) -> UpstreamPool:
    up = config.upstream
    return UpstreamPool(
        up.url,
        max_connections=up.max_connections,
        keepalive_timeout=up.keepalive_timeout_seconds,
        connect_timeout=up.connect_timeout_seconds,
        timeout=up.timeout_seconds,  # also bounds the wait for a free pooled connection
    )


def _call_soon(
    loop: asyncio.AbstractEventLoop, fn: Callable[[Path, int], None], path: Path, records: int
) -> None:
    """Run ``fn(path, records)`` on the loop from the writer thread (a no-op once it closed)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, path, records)


def _address_url(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def _url(runner: web.BaseRunner) -> str:
    host, port = runner.addresses[0][:2]
    return _address_url(host, port)


async def start(config: SidecarConfig, registry: CollectorRegistry) -> Sidecar:
    """Start every part of the sidecar; raises ConfigError/StoreConfigError before serving."""
    metrics = SidecarMetrics(registry)
    redactor = build_redactor(config.redact)  # reads the key file: a bad key stops us here
    await asyncio.to_thread(prepare_spool_dir, config.spool.dir)  # unusable: one line, exit 2
    store = open_store(config.store.destination, config.store)
    try:
        await store.check()
    except BaseException:
        await store.close()
        raise
    usage = SpoolUsage(metrics.spool_bytes.set)
    recovered = await asyncio.to_thread(recover, config.spool.dir, metrics, usage)
    if recovered:
        log.info("recovered %d segment(s) left open by an earlier run", recovered)
    uploader = Uploader(config.spool.dir, store, config.store, metrics, usage)
    loop = asyncio.get_running_loop()
    writer = SpoolWriter(
        config.spool,
        config.capture,
        metrics,
        usage,
        on_sealed=lambda path, records: _call_soon(loop, uploader.notify_sealed, path, records),
        redactor=redactor,
        genai=GenAIReader(GenAIMetrics(registry, config.genai.max_models), redactor)
        if config.genai.enabled
        else None,
    )
    sidecar = Sidecar(config=config, metrics=metrics, store=store, writer=writer, uploader=uploader)
    await asyncio.to_thread(writer.start)
    sidecar._upload_task = asyncio.create_task(uploader.run(), name="modeltap-uploader")

    admin_runner = web.AppRunner(admin_app(sidecar, registry), access_log=None)
    await admin_runner.setup()
    await web.TCPSite(admin_runner, config.server.admin_host, config.server.admin_port).start()

    pool = _upstream_pool(config)
    sidecar._pool = pool
    proxy = Proxy(config, metrics, pool, writer if config.capture.enabled else None)
    server = ProxyServer(proxy.handle, config.server, metrics, proxy.answer_from_callbacks)
    host, port = await server.listen(config.server.host, config.server.port)
    sidecar._server = server
    sidecar._runners = [admin_runner]
    sidecar.proxy_url, sidecar.admin_url = _address_url(host, port), _url(admin_runner)
    sidecar.ready = True
    return sidecar


async def serve(
    config: SidecarConfig, on_ready: Callable[[Sidecar], Awaitable[None] | None] | None = None
) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit status."""
    registry = CollectorRegistry()
    sidecar = await start(config, registry)
    # What start-up allocated (modules, config, botocore's service models) lives as long as the
    # process: frozen, the collector stops rescanning it (2-3 us less CPU per request, bench/proxy).
    gc.freeze()
    compiled = len(compiled_modules())
    log.info(
        "modeltap sidecar ready: proxy %s -> %s, admin %s, capturing %s%% to %s; request path %s",
        sidecar.proxy_url,
        config.upstream.url,
        sidecar.admin_url,
        config.capture.sample_percent if config.capture.enabled else 0,
        config.store.destination,
        f"compiled ({compiled}/{len(MODULES)} modules)" if compiled else "pure Python",
    )
    if on_ready is not None:
        result = on_ready(sidecar)
        if result is not None:
            await result
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests, sealing and uploading the spool")
    left = await sidecar.stop()
    log.info("stopped; %d segment(s) left in the spool", left)
    return 0
