"""A failed S3 upload lets go of its request at once, not at the next full garbage collection.

A connection cut mid-request used to leave aiohttp's request, connection and its copy of the body
in reference cycles through the exceptions' tracebacks (bench/soak: the sidecar's RSS stepped up
after every connection-reset fault). The server here is a local aiohttp app that reads the body
and cuts the connection, as harness/faulty_proxy.py does in the soak.
"""

from __future__ import annotations

import gc
import socket
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from modeltap.core.errors import StoreError
from modeltap.core.store.s3 import S3Store, _drop_tracebacks
from sidecar.config import StoreConfig


async def _reset(request: web.Request) -> web.Response:
    await request.read()
    assert request.transport is not None
    request.transport.abort()
    return web.Response(status=500)


@pytest.fixture
async def resetting_endpoint() -> AsyncIterator[str]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", _reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("aws_env")
async def test_reset_upload_frees_its_body_without_garbage_collection(
    resetting_endpoint: str,
) -> None:
    cfg = StoreConfig(
        destination="s3://bucket/prefix", endpoint_url=resetting_endpoint, path_style=True
    )
    store = S3Store(bucket="bucket", prefix="prefix", config=cfg, uri=cfg.destination)
    await store.open()
    sent: list[weakref.ref[Any]] = []

    def remember_body(request: Any, **_: Any) -> None:
        # botocore wraps a bytes Body in a BytesIO; aiohttp's payload copies it out of that.
        sent.append(weakref.ref(request.body))

    store.client.meta.events.register("before-send.s3.PutObject", remember_body)
    data = b"x" * (2 * 1024 * 1024)
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # only reference counting may free the failed requests
    try:
        for n in range(3):
            with pytest.raises(StoreError) as failure:
                await store.put(f"segment-{n}.jsonl", data, content_type="application/jsonlines")
            assert failure.value.reason == "connection" and failure.value.retryable
            del failure
        assert len(sent) == 3
        assert [ref() for ref in sent] == [None, None, None], "a failed request is still alive"
    finally:
        if was_enabled:
            gc.enable()
        await store.close()


def test_drop_tracebacks_walks_causes_and_contexts() -> None:
    def raised(exc: BaseException) -> BaseException:
        try:
            raise exc
        except BaseException as caught:
            return caught

    root = raised(ConnectionResetError("reset"))
    context = raised(OSError("while handling"))
    context.__context__ = root
    top = raised(RuntimeError("wrapped"))
    top.__cause__ = context
    top.__context__ = context
    root.__context__ = top  # a loop must not hang it
    assert all(e.__traceback__ is not None for e in (top, context, root))
    _drop_tracebacks(top)
    assert [e.__traceback__ for e in (top, context, root)] == [None, None, None]
    assert str(top.__cause__) == "while handling"  # the chain itself stays
