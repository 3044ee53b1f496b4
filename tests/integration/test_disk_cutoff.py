"""Capture stops (serving does not) when the spool's filesystem is full: on a real, small tmpfs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.metrics import scrape, value
from tests.conftest import SidecarProc
from tests.integration.test_proxy_e2e import _post_many
from tests.support.records import read_records

pytestmark = pytest.mark.integration


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, mounted for the test and unmounted after it."""
    mnt = tmp_path / "spoolfs"
    mnt.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path, nbytes: int) -> None:
    with open(path, "wb") as fh:
        fh.write(b"\0" * nbytes)
        fh.flush()
        os.fsync(fh.fileno())


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_capture_pauses_above_cutoff_and_resumes_below(
    upstream: str, start_sidecar: Callable[..., SidecarProc], small_fs: Path
) -> None:
    ballast = small_fs / "ballast"
    fill(ballast, 1_700_000)  # ~81% of 2 MiB: above the default 75% cutoff
    sc = start_sidecar(upstream, "--capture.sample-percent", "100", spool=small_fs / "spool")
    body = [(b"1,2,3", {"Content-Type": "text/csv"})]
    assert asyncio.run(_post_many(f"{sc.proxy_url}/echo", body * 50)) == [200] * 50
    samples = scrape(sc.admin_url)
    assert value(samples, "modeltap_sidecar_capture_paused") == 1
    assert value(samples, "modeltap_sidecar_capture_records_total", outcome="skipped_disk") == 50
    assert value(samples, "modeltap_sidecar_capture_records_total", outcome="spooled") == 0
    assert value(samples, "modeltap_sidecar_spool_disk_usage_ratio") > 0.75

    ballast.unlink()
    wait_for(lambda: value(scrape(sc.admin_url), "modeltap_sidecar_capture_paused") == 0)
    assert asyncio.run(_post_many(f"{sc.proxy_url}/echo", body * 20)) == [200] * 20
    assert sc.proc.stop() == 0
    assert len(read_records(sc.store)) == 20


def test_disk_full_before_the_cutoff_counts_write_errors_and_leaves_no_torn_line(
    upstream: str, start_sidecar: Callable[..., SidecarProc], small_fs: Path
) -> None:
    # With the cutoff at 100% the writer only learns of a full disk from ENOSPC.
    sc = start_sidecar(
        upstream, "--capture.sample-percent", "100", "--spool.max-disk-usage-percent", "100",
        "--spool.max-segment-age-seconds", "3600", spool=small_fs / "spool",
    )  # fmt: skip
    fill(small_fs / "ballast", 1_500_000)
    payload = [(b"7" * 300_000, {"Content-Type": "text/csv"})]
    statuses = asyncio.run(_post_many(f"{sc.proxy_url}/echo", payload * 4, concurrency=1))
    assert statuses == [200] * 4

    def outcomes() -> tuple[float, float]:
        samples = scrape(sc.admin_url)
        return (
            value(samples, "modeltap_sidecar_capture_records_total", outcome="spooled"),
            value(samples, "modeltap_sidecar_capture_records_total", outcome="write_error"),
        )

    wait_for(lambda: sum(outcomes()) == 4)  # every accepted record is accounted for
    spooled, errors = outcomes()
    assert errors >= 1
    (small_fs / "ballast").unlink()
    assert sc.proc.stop() == 0
    records = read_records(sc.store)  # every line parses: no torn record reached the store
    assert len(records) == spooled
