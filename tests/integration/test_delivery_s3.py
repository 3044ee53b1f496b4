"""Durable delivery to a real S3 (SeaweedFS): outages, errors, kills and replicas lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from harness.metrics import scrape, value
from harness.procs import PYTHON, Proc, free_port, wait_http
from harness.seaweed import SeaweedS3
from tests.conftest import SidecarProc

pytestmark = pytest.mark.integration


def s3_flags(s3: SeaweedS3, bucket: str, *extra: str, endpoint: str | None = None) -> list[str]:
    return [
        "--store.destination", f"s3://{bucket}/captures",
        "--store.endpoint-url", endpoint or s3.endpoint_url,
        "--store.path-style", "true",
        "--store.region", s3.region,
        "--store.retry-base-seconds", "0.1", "--store.retry-max-seconds", "0.5",
        "--capture.sample-percent", "100", "--capture.endpoint-name", "ep",
        *extra,
    ]  # fmt: skip


def bucket_objects(s3: SeaweedS3, bucket: str, prefix: str = "captures/") -> dict[str, bytes]:
    out = {}
    with contextlib.closing(s3.client()) as client:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def records_of(objects: dict[str, bytes]) -> list[dict[str, Any]]:
    out = []
    for key, data in objects.items():
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        out.extend(orjson.loads(line) for line in data.splitlines())
    return out


def ids_of(records: list[dict[str, Any]]) -> list[str]:
    return [r["eventMetadata"]["inferenceId"] for r in records]


class Traffic:
    """Steady traffic with unique inference ids on a thread; remembers which requests got 200."""

    def __init__(self, url: str, rate_per_s: float = 100.0, max_requests: int = 5000) -> None:
        self.url, self.interval, self.max = url, 1.0 / rate_per_s, max_requests
        self.ok: list[tuple[str, float]] = []  # (id, time answered)
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            for n in range(self.max):
                if self._stop.is_set():
                    break
                rid = f"r-{n}"
                try:
                    async with session.post(
                        self.url,
                        data=f"{n},1,2",
                        headers={"Content-Type": "text/csv", "X-Inference-Id": rid},
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            self.ok.append((rid, time.monotonic()))
                        else:
                            self.failed += 1
                except aiohttp.ClientError:
                    self.failed += 1
                await asyncio.sleep(self.interval)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def wait_until(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.1)


@pytest.fixture
def restore_seaweed(seaweed: SeaweedS3) -> Iterator[SeaweedS3]:
    """For tests that stop the shared SeaweedFS: it runs again afterwards, whatever happened."""
    try:
        yield seaweed
    finally:
        if not seaweed.running:
            seaweed.start()


def test_store_outage_under_traffic_loses_nothing_and_objects_are_the_spooled_bytes(
    upstream: str, start_sidecar: Callable[..., SidecarProc], s3_env: SeaweedS3, s3_bucket: str,
    restore_seaweed: SeaweedS3, tmp_path: Path,
) -> None:  # fmt: skip
    sc = start_sidecar(upstream, *s3_flags(s3_env, s3_bucket, "--store.sse", "AES256"))
    with Traffic(f"{sc.proxy_url}/echo") as traffic:
        time.sleep(1.5)
        s3_env.stop()
        time.sleep(2.5)  # segments seal (0.5 s age) and pile up in the spool
        wait_until(
            lambda: list(sc.spool.rglob("*.jsonl")), what="sealed segments waiting in the spool"
        )
        held = tmp_path / "held"
        shutil.copytree(sc.spool, held)
        samples = scrape(sc.admin_url)
        assert value(samples, "modeltap_sidecar_upload_pending_segments") >= 1
        assert value(samples, "modeltap_sidecar_upload_failures_total", reason="connection") >= 1
        s3_env.start()
        time.sleep(1.5)
    assert traffic.failed == 0  # serving never stopped
    assert sc.proc.stop() == 0
    objects = bucket_objects(s3_env, s3_bucket)
    got = ids_of(records_of(objects))
    assert sorted(got) == sorted(rid for rid, _ in traffic.ok)  # nothing lost, nothing twice
    held_segments = {p.relative_to(held).as_posix(): p.read_bytes() for p in held.rglob("*.jsonl")}
    assert held_segments
    for rel, data in held_segments.items():
        assert objects[f"captures/{rel}"] == data  # byte-identical, under the spool's key
    with contextlib.closing(s3_env.client()) as client:
        head = client.head_object(Bucket=s3_bucket, Key=f"captures/{next(iter(held_segments))}")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/jsonlines"


def test_wrong_credentials_fail_at_start_up(
    upstream: str,
    s3_env: SeaweedS3,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    proc = Proc(
        "sidecar-badkeys",
        [PYTHON, "-m", "sidecar", "--upstream.url", upstream, "--server.port", str(free_port()),
         "--server.admin-port", str(free_port()), "--spool.dir", str(tmp_path / "spool"),
         *s3_flags(s3_env, s3_bucket)],
        tmp_path,
    )  # fmt: skip
    try:
        assert proc.wait(30) == 2
    finally:
        proc.stop()
    log = proc.log()
    assert "modeltap sidecar: store error:" in log
    assert s3_bucket in log and ("SignatureDoesNotMatch" in log or "credentials" in log)
    assert "Traceback" not in log


def test_store_errors_are_retried_and_counted(
    upstream: str,
    start_sidecar: Callable[..., SidecarProc],
    s3_env: SeaweedS3,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    fault = Proc(
        "faulty-s3",
        [PYTHON, "-m", "harness.faulty_proxy", str(port), s3_env.endpoint_url],
        tmp_path,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/__fault__", fault)
        sc = start_sidecar(
            upstream, *s3_flags(s3_env, s3_bucket, endpoint=f"http://127.0.0.1:{port}")
        )
        arm = orjson.dumps({"status": 503, "code": "SlowDown", "count": 4, "method": "PUT"})
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}/__fault__", data=arm)
        ).close()
        asyncio.run(_send(sc.proxy_url, 30))
        wait_until(lambda: value(scrape(sc.admin_url), "modeltap_sidecar_upload_records_total") == 30,
                   what="30 records stored")  # fmt: skip
        samples = scrape(sc.admin_url)
        assert value(samples, "modeltap_sidecar_upload_failures_total", reason="throttled") == 4
        assert value(samples, "modeltap_sidecar_upload_retries_total") == 4
        assert sc.proc.alive()
        assert sc.proc.stop() == 0
    finally:
        fault.stop()
    assert sorted(ids_of(records_of(bucket_objects(s3_env, s3_bucket)))) == sorted(
        f"r-{i}" for i in range(30)
    )


async def _send(proxy: str, n: int, start: int = 0) -> None:
    async with aiohttp.ClientSession() as session:
        for i in range(start, start + n):
            async with session.post(
                f"{proxy}/echo",
                data=f"{i}",
                headers={"Content-Type": "text/csv", "X-Inference-Id": f"r-{i}"},
            ) as resp:
                assert resp.status == 200


def test_sigkill_mid_traffic_then_restart_uploads_what_was_spooled(
    upstream: str, start_sidecar: Callable[..., SidecarProc], s3_env: SeaweedS3, s3_bucket: str
) -> None:
    flags = s3_flags(s3_env, s3_bucket, "--spool.max-segment-age-seconds", "3600")
    sc = start_sidecar(upstream, *flags)
    with Traffic(f"{sc.proxy_url}/echo", rate_per_s=200) as traffic:
        time.sleep(2.0)
        sc.proc.kill()
        killed_at = time.monotonic()
    # The open segment was never sealed: it is still in the spool as .part, and nothing was stored.
    assert list(sc.spool.rglob("*.jsonl.part"))
    restarted = start_sidecar(upstream, *flags, name="sidecar2", spool=sc.spool)
    wait_until(lambda: not list(sc.spool.rglob("*.jsonl*")), what="the recovered segment stored")
    assert restarted.proc.stop() == 0
    got = ids_of(records_of(bucket_objects(s3_env, s3_bucket)))
    assert len(got) == len(set(got))  # no duplicates, every line parsed
    answered = {rid: t for rid, t in traffic.ok}
    assert set(got) <= set(answered)
    # Lost at most the records queued in memory: those answered within the last flush interval
    # (0.2 s) plus one write; everything answered earlier is in the bucket.
    lost = set(answered) - set(got)
    assert all(answered[rid] > killed_at - 1.0 for rid in lost), sorted(lost)[:5]
    assert len(got) >= 200


def test_replicas_writing_to_one_prefix_never_overwrite(
    upstream: str, start_sidecar: Callable[..., SidecarProc], s3_env: SeaweedS3, s3_bucket: str
) -> None:
    replicas = [
        start_sidecar(upstream, *s3_flags(s3_env, s3_bucket), name=f"replica{i}") for i in range(3)
    ]

    async def everyone() -> None:
        await asyncio.gather(
            *(_send(r.proxy_url, 100, start=1000 * i) for i, r in enumerate(replicas))
        )

    asyncio.run(everyone())
    stored_objects = 0.0
    for r in replicas:
        wait_until(
            lambda r=r: value(scrape(r.admin_url), "modeltap_sidecar_upload_records_total") == 100
        )  # type: ignore[misc]
        stored_objects += value(scrape(r.admin_url), "modeltap_sidecar_upload_objects_total")
        assert r.proc.stop() == 0
    objects = bucket_objects(s3_env, s3_bucket)
    assert len(objects) == stored_objects  # every object a replica stored is still there
    got = ids_of(records_of(objects))
    assert sorted(got) == sorted(f"r-{1000 * i + j}" for i in range(3) for j in range(100))
