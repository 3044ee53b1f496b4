"""The engines on SeaweedFS (auth on): one baseline and one monitoring window, each in-process, on
a process pool of 2 and on a Dask LocalCluster of 2 worker processes. The workers open the
bucket themselves from the URI and the StoreConfig, with the credentials of their environment;
every result matches the in-process one (``assert_same_profile``: exact counts, bins, min, max;
sums to rounding; quantiles within the sketch's error)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from analyzer.baseline import build_baseline
from analyzer.constraints import ConstraintOptions, suggest_constraints
from analyzer.engine import DaskEngine, Engine, ProcessEngine
from analyzer.job import run_window
from analyzer.results import RunResult
from analyzer.sources import DataSource
from analyzer.targets import Target
from analyzer.window import Window
from harness.seaweed import SeaweedS3
from modeltap.core.store import open_store
from sidecar.config import StoreConfig
from tests.analyzer.test_engine import assert_same_profile, assert_same_run
from tests.analyzer.test_job import T0, capture_line

pytestmark = pytest.mark.integration


def _upload(seaweed: SeaweedS3, bucket: str) -> None:
    rng = np.random.default_rng(11)
    with contextlib.closing(seaweed.client()) as client:
        for i in range(3):
            rows = rng.normal(0, 1, (4000, 2)).round(5)
            cities = rng.integers(0, 40, 4000)
            text = "a,b,city\n" + "".join(
                f"{a},{b},c{c}\n" for (a, b), c in zip(rows, cities, strict=True)
            )
            client.put_object(Bucket=bucket, Key=f"train/part-{i}.csv", Body=text.encode())
        for o in range(24):
            data = rng.normal(0.3 if o % 2 else 0.0, 1, (800, 3)).round(4)
            lines = [capture_line([*r[:2], f"c{int(abs(r[2]) * 10)}"],
                                  T0 + dt.timedelta(seconds=o * 120 + i // 10))
                     for i, r in enumerate(data)]  # fmt: skip
            if o == 5:
                lines.insert(3, b"not json\n")
            key = f"captures/ep/v1/2026/03/01/10/{o:03d}.jsonl"
            client.put_object(Bucket=bucket, Key=key, Body=b"".join(lines))


@pytest.mark.timeout(150)
def test_engines_agree_on_seaweedfs(s3_env: SeaweedS3, s3_bucket: str) -> None:
    _upload(s3_env, s3_bucket)
    config = StoreConfig(region=s3_env.region, endpoint_url=s3_env.endpoint_url, path_style=True)
    source = DataSource([f"s3://{s3_bucket}/train/"], store_config=config)
    window = Window(T0, T0 + dt.timedelta(hours=1))

    async def monitor(target: Target, engine: Engine | None) -> RunResult:
        captures = open_store(f"s3://{s3_bucket}/captures", config)
        try:
            return await run_window(
                captures, None, target, window, engine=engine, store_config=config
            )
        finally:
            await captures.close()

    base = build_baseline(source)
    target = Target("ep", "v1", base, suggest_constraints(base, ConstraintOptions()))
    local = asyncio.run(monitor(target, None))
    assert (local.rows, local.read.objects, local.read.bad_lines) == (24 * 800, 24, 1)

    # The cluster starts after s3_env: its worker processes inherit the test's credentials.
    engines: list[Engine] = [ProcessEngine(2, min_job_bytes=0), DaskEngine("", 2)]
    try:
        for engine in engines:
            assert_same_profile(base, build_baseline(source, engine=engine), same_edges=False)
            assert_same_run(local, asyncio.run(monitor(target, engine)))
    finally:
        for engine in engines:
            engine.close()


def test_workers_report_unreadable_objects(
    s3_env: SeaweedS3, s3_bucket: str, tmp_path: Path
) -> None:
    """A worker that cannot read an object fails the run with the key in the message."""
    _upload(s3_env, s3_bucket)
    wrong = StoreConfig(region=s3_env.region, endpoint_url="http://127.0.0.1:9", path_style=True)
    captures = open_store(f"s3://{s3_bucket}/captures", StoreConfig(
        region=s3_env.region, endpoint_url=s3_env.endpoint_url, path_style=True))  # fmt: skip
    source = DataSource([str(_local_train(tmp_path))])
    base = build_baseline(source)
    target = Target("ep", "v1", base, {})
    engine = ProcessEngine(2, min_job_bytes=0)

    async def run() -> RunResult:
        try:
            return await run_window(
                captures, None, target, Window(T0, T0 + dt.timedelta(hours=1)),
                evaluate=None, engine=engine, store_config=wrong,
            )  # fmt: skip
        finally:
            await captures.close()

    result = asyncio.run(run())
    assert result.status == "Failed"
    assert "cannot read the object" in result.error and "ep/v1/2026/03/01/10/" in result.error


def _local_train(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    rng = np.random.default_rng(0)
    path.write_text(
        "a,b,city\n" + "".join(f"{x:.3f},{y:.3f},c1\n" for x, y in rng.normal(0, 1, (500, 2)))
    )
    return path
