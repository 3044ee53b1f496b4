"""analyzer.attribution.client against a real aiohttp model server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest
from aiohttp import web

from analyzer.attribution import (
    AttributionError,
    KernelExplainer,
    ModelCallError,
    ModelClient,
    ModelClientConfig,
    ModelResponseError,
    TokenBucket,
    explain_async,
)

W = np.array([1.0, -2.0, 0.5])


@dataclass
class Model:
    """A linear model server that records what it saw."""

    delay: float = 0.02
    fail_first: int = 0
    status: int = 503
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0
    rows: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_first > 0:
                self.fail_first -= 1
                return web.Response(status=self.status, text="model overloaded")
            body = await request.read()
            if request.content_type == "application/json":
                x = np.array(orjson.loads(body)["instances"], dtype=float)
            else:
                x = np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2)
            self.rows.append(len(x))
            score = x @ W
            mode = request.query.get("mode")
            if mode == "multi":
                return web.json_response({"predictions": np.stack([score, -score], 1).tolist()})
            if mode == "objects":
                return web.json_response({"predictions": [{"score": s} for s in score.tolist()]})
            if mode == "csvmulti":  # score, a text label, minus the score
                lines = (f"{float(s)!r},label,{float(-s)!r}" for s in score)
                return web.Response(text="\n".join(lines), content_type="text/csv")
            if mode == "short":
                return web.Response(text="1.0\n")
            if request.content_type == "application/json":
                return web.json_response({"predictions": score.tolist()})
            return web.Response(
                text="\n".join(f"{float(s)!r},label" for s in score), content_type="text/csv"
            )
        finally:
            self.in_flight -= 1


@dataclass
class Server:
    model: Model
    url: str


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    model = Model()
    app = web.Application()
    app.router.add_post("/invocations", model.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Server(model, f"http://{host}:{port}/invocations")
    finally:
        await runner.cleanup()


def config(url: str, **kw: Any) -> ModelClientConfig:
    base: dict[str, Any] = {"requests_per_second": 1000.0, "burst": 100, "backoff_seconds": 0.01}
    return ModelClientConfig(url=url, **{**base, **kw})


async def test_csv_batches_and_concurrency_bound(server: Server) -> None:
    x = np.random.default_rng(0).normal(size=(95, 3))
    async with ModelClient(config(server.url, rows_per_request=10, max_concurrency=3)) as c:
        scores = await c.predict(x)
    np.testing.assert_allclose(scores, x @ W)
    assert sorted(server.model.rows) == [5] + [10] * 9  # 10 requests of at most 10 rows
    assert server.model.max_in_flight == 3  # seen by the server: never more than 3 at once


async def test_json_paths(server: Server) -> None:
    x = np.random.default_rng(1).normal(size=(7, 3))
    cfg = config(server.url, content_type="application/json", rows_per_request=3)
    async with ModelClient(cfg) as c:
        np.testing.assert_allclose(await c.predict(x), x @ W)
    multi = config(server.url + "?mode=multi", content_type="application/json")
    async with ModelClient(multi) as c:
        np.testing.assert_allclose(await c.predict(x), np.stack([x @ W, -(x @ W)], 1))
    objects = config(
        server.url + "?mode=objects",
        content_type="application/json",
        score_path="predictions[*].score",
    )
    async with ModelClient(objects) as c:
        np.testing.assert_allclose(await c.predict(x), x @ W)


async def test_retries_then_success(server: Server) -> None:
    server.model.fail_first = 2
    async with ModelClient(config(server.url, retries=2)) as c:
        np.testing.assert_allclose(await c.predict(np.eye(3)), W)
        assert c.requests == 3


async def test_errors(server: Server) -> None:
    server.model.fail_first = 5
    async with ModelClient(config(server.url, retries=1)) as c:
        with pytest.raises(
            ModelCallError, match=r"2 attempts\): HTTP 503: 'model overloaded'"
        ) as e:
            await c.predict(np.eye(3))
    assert e.value.status == 503 and e.value.url == server.url
    server.model.fail_first, server.model.status = 1, 400
    requests_before = server.model.requests
    async with ModelClient(config(server.url, retries=3)) as c:
        with pytest.raises(ModelCallError, match=r"\(1 attempt\): HTTP 400"):
            await c.predict(np.eye(3))
    assert server.model.requests == requests_before + 1  # a 400 is not retried
    server.model.delay = 0.5
    async with ModelClient(config(server.url, retries=1, timeout_seconds=0.05)) as c:
        with pytest.raises(ModelCallError, match=r"\(2 attempts\): timed out after 0\.05s"):
            await c.predict(np.eye(3))
    server.model.delay = 0.0
    async with ModelClient(config(server.url + "?mode=short")) as c:
        with pytest.raises(ModelResponseError, match="answered 3 rows"):
            await c.predict(np.eye(3))
    async with ModelClient(
        config(server.url + "?mode=objects", content_type="application/json")
    ) as c:
        with pytest.raises(ModelResponseError, match="cannot read scores"):
            await c.predict(np.eye(3))
    async with ModelClient(config("http://127.0.0.1:9/none", retries=0)) as c:
        with pytest.raises(ModelCallError, match="ClientConnectorError"):
            await c.predict(np.eye(3))


async def test_outputs_pick_some_of_each_rows_scores(server: Server) -> None:
    """Several outputs per row (multiclass probabilities, multi-target regression): ``outputs``
    keeps the wanted ones in the order given, from CSV columns or each row's JSON list."""
    x = np.random.default_rng(2).normal(size=(9, 3))
    both = np.stack([x @ W, -(x @ W)], 1)
    multi = config(server.url + "?mode=multi", content_type="application/json", outputs=(1, 0))
    async with ModelClient(multi) as c:
        np.testing.assert_allclose(await c.predict(x), both[:, [1, 0]])
    csv = config(server.url + "?mode=csvmulti", outputs=(0, 2))  # column 1 is text: not read
    async with ModelClient(csv) as c:
        np.testing.assert_allclose(await c.predict(x), both)
    one = config(server.url + "?mode=multi", content_type="application/json", outputs=(1,))
    async with ModelClient(one) as c:
        np.testing.assert_allclose(await c.predict(x), -(x @ W))
    beyond = config(server.url + "?mode=multi", content_type="application/json", outputs=(2,))
    async with ModelClient(beyond) as c:
        with pytest.raises(ModelResponseError, match=r"outputs \[2\] asked of rows with 2"):
            await c.predict(x)


def test_config_validation() -> None:
    with pytest.raises(AttributionError, match="outputs lists an index twice"):
        ModelClientConfig(url="http://x", outputs=(1, 1))
    with pytest.raises(AttributionError, match="outputs must be indices"):
        ModelClientConfig(url="http://x", outputs=())
    with pytest.raises(AttributionError, match="http"):
        ModelClientConfig(url="ftp://x")
    with pytest.raises(AttributionError, match="max_concurrency"):
        ModelClientConfig(url="http://x", max_concurrency=0)
    with pytest.raises(AttributionError, match="score_path"):
        ModelClientConfig(url="http://x", score_path="a[")


class FakeClock:
    """Time that moves only when someone sleeps: rate limits counted, not timed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_rate_limit_in_counts(server: Server) -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, burst=2, clock=clock, sleep=clock.sleep)
    starts: list[float] = []
    acquire = bucket.acquire

    async def counted() -> None:
        await acquire()
        starts.append(clock())

    bucket.acquire = counted  # type: ignore[method-assign]
    cfg = config(server.url, rows_per_request=1, max_concurrency=4)
    async with ModelClient(cfg, limiter=bucket) as c:
        await c.predict(np.ones((12, 3)))
    assert len(starts) == 12 == server.model.requests
    # by any time t, at most burst + rate * t requests have started
    for i, t in enumerate(sorted(starts)):
        assert i + 1 <= 2 + 5.0 * t + 1e-9
    assert max(starts) == pytest.approx((12 - 2) / 5.0)


async def test_kernel_shap_through_the_server(server: Server) -> None:
    rng = np.random.default_rng(2)
    bg, x = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    async with ModelClient(config(server.url, rows_per_request=50, max_concurrency=2)) as c:
        e = await explain_async(KernelExplainer(bg), x, c.predict)
    np.testing.assert_allclose(e.shap_values[:, :, 0], W * (x - bg.mean(axis=0)), atol=1e-9)
    assert max(server.model.rows) <= 50
