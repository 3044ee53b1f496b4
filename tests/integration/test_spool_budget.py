"""The spool's byte budget (spool.max_bytes) with a real sidecar, a real upstream and a real S3
(SeaweedFS behind the fault injector) that refuses every upload for a while."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from harness.faulty_proxy import arm
from harness.metrics import scrape, value
from harness.seaweed import SeaweedS3
from sidecar.segment import BLOCK
from tests.conftest import SidecarProc
from tests.integration.test_delivery_s3 import bucket_objects, ids_of, records_of, wait_until

pytestmark = pytest.mark.integration

BUDGET = 64 * 1024
OUTCOMES = "modeltap_sidecar_capture_records_total"


async def send(proxy: str, ids: list[str]) -> None:
    """Sequential requests of ~600 payload bytes each; every one must be answered 200."""
    async with aiohttp.ClientSession() as session:
        for rid in ids:
            async with session.post(
                f"{proxy}/echo",
                data=f"{rid}," + "1.5," * 75,
                headers={"Content-Type": "text/csv", "X-Inference-Id": rid},
            ) as resp:
                await resp.read()
                assert resp.status == 200


def segment_bytes_on_disk(spool: Path) -> int:
    return sum(p.stat().st_size for p in spool.rglob("*.jsonl*") if p.is_file())


def test_capture_pauses_at_the_byte_budget_and_resumes_as_uploads_drain(
    upstream: str,
    start_sidecar: Callable[..., SidecarProc],
    s3_env: SeaweedS3,
    s3_bucket: str,
    faulty_s3: str,
) -> None:
    sc = start_sidecar(
        upstream,
        "--spool.max-bytes", str(BUDGET), "--spool.max-segment-bytes", "8192",
        "--capture.sample-percent", "100",
        "--store.destination", f"s3://{s3_bucket}/captures", "--store.endpoint-url", faulty_s3,
        "--store.path-style", "true", "--store.region", s3_env.region,
        "--store.retry-base-seconds", "0.05", "--store.retry-max-seconds", "0.2",
    )  # fmt: skip
    assert value(scrape(sc.admin_url), "modeltap_sidecar_spool_max_bytes") == BUDGET

    # The store refuses every upload: nothing leaves the spool, so its size only grows and its
    # size at the end of this phase is the largest it ever was.
    arm(faulty_s3, status=503, code="SlowDown", count=1_000_000, method="PUT")
    first = [f"a-{i}" for i in range(300)]  # ~230 KB of records: 3.5 budgets
    asyncio.run(send(sc.proxy_url, first))

    def accounted() -> float:
        s = scrape(sc.admin_url)
        return value(s, OUTCOMES, outcome="spooled") + value(s, OUTCOMES, outcome="skipped_disk")

    wait_until(lambda: accounted() == len(first), what="every record written or skipped")
    samples = scrape(sc.admin_url)
    spooled = value(samples, OUTCOMES, outcome="spooled")
    assert 0 < spooled < len(first)
    assert value(samples, "modeltap_sidecar_capture_paused") == 1
    assert value(samples, OUTCOMES, outcome="dropped_queue_full") == 0
    assert value(samples, OUTCOMES, outcome="write_error") == 0
    # The promise: the segments' bytes never pass spool.max_bytes; on disk the open segment
    # may also hold its direct-I/O padding, less than one block.
    logical = value(samples, "modeltap_sidecar_spool_bytes")
    assert logical <= BUDGET
    assert logical > BUDGET - 1024  # it filled up to the budget (one record is ~700 bytes)
    assert segment_bytes_on_disk(sc.spool) <= BUDGET + BLOCK - 1

    # The store is back: uploads drain the spool and capture resumes by itself.
    arm(faulty_s3, count=0)
    wait_until(lambda: value(scrape(sc.admin_url), "modeltap_sidecar_capture_paused") == 0,
               what="capture resumed")  # fmt: skip
    second = [f"b-{i}" for i in range(40)]  # ~28 KB: fits in the drained spool
    asyncio.run(send(sc.proxy_url, second))
    assert sc.proc.stop() == 0  # SIGTERM: the writer seals, the uploader stores the rest

    stored = ids_of(records_of(bucket_objects(s3_env, s3_bucket)))
    assert len(stored) == len(set(stored))  # nothing twice
    assert set(second) <= set(stored)  # everything after the resume
    # Nothing accepted was lost: every record the sidecar wrote reached the store.
    assert len([i for i in stored if i.startswith("a-")]) == spooled
    assert set(stored) <= set(first) | set(second)
