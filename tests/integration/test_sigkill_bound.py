"""What a SIGKILL loses, with the spool writer starved of CPU: a real sidecar pinned to one CPU next
to busy processes, its writer at the lowest priority, real traffic, then SIGKILL and a restart."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from harness.metrics import scrape, value
from harness.procs import PYTHON, Proc
from tests.conftest import SidecarProc
from tests.integration.test_delivery_s3 import wait_until
from tests.support.records import read_records

pytestmark = pytest.mark.integration

MAX_AGE = 0.25  # capture.queue_max_age_seconds for this test
SLACK = 0.1  # between writing an answer and queueing its record (a few ms of CPU contention)
OUTCOMES = "modeltap_sidecar_capture_records_total"
# 1000 CSV rows whose first column is redacted: rewriting them is the writer's work per record,
# several times the event loop's work to forward the request.
ROWS = "".join(f"id-{r},1.5,2.5,3.5\n" for r in range(1000))


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of ``pid`` to ``cpu`` (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), {cpu})


@contextlib.contextmanager
def busy(cpu: int, n: int, log_dir: Path) -> Iterator[None]:
    """``n`` processes spinning on ``cpu``; stopped by pid on exit."""
    procs = [Proc(f"busy-{i}", [PYTHON, "-c", "while True: pass"], log_dir) for i in range(n)]
    try:
        for p in procs:
            os.sched_setaffinity(p.pid, {cpu})
        yield
    finally:
        for p in procs:
            p.signal(signal.SIGKILL)
            p.stop()


async def traffic(
    proxy: str, seconds: float, workers: int, limit: int
) -> list[tuple[str, float, float]]:
    """``workers`` clients sending one request after another for about ``seconds`` (enough to
    keep the sidecar's event loop busy); returns (inference id, time sent, time answered) of
    every request, on the monotonic clock the sidecar also uses."""
    out: list[tuple[str, float, float]] = []
    end = time.monotonic() + seconds

    async def client(w: int, session: aiohttp.ClientSession) -> None:
        for i in range(limit):
            if time.monotonic() > end:
                return
            rid = f"k-{w}-{i}"
            sent = time.monotonic()
            async with session.post(
                f"{proxy}/echo",
                data=ROWS,
                headers={"Content-Type": "text/csv", "X-Inference-Id": rid},
            ) as resp:
                await resp.read()
                assert resp.status == 200
            out.append((rid, sent, time.monotonic()))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(w, session) for w in range(workers)))
    return out


def most_within(answered: list[tuple[str, float, float]], span: float, slack: float) -> int:
    """The most requests whose records can all have been queued within ``span`` seconds.

    The sidecar queues a record after the request was sent and right after writing its answer
    (``slack`` allows for the sidecar being descheduled between the two), so records queued
    within [w, w + span] belong to requests sent at or before w + span and answered at or after
    w - slack; the count is largest with w - slack at some answer time.
    """
    sent = sorted(s for _, s, _ in answered)
    answers = sorted(r for _, _, r in answered)
    return max(
        bisect.bisect_right(sent, a + slack + span) - bisect.bisect_left(answers, a)
        for a in answers
    )


def test_sigkill_with_a_starved_writer_loses_at_most_the_max_age_of_traffic(
    upstream: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    cpu = min(os.sched_getaffinity(0))
    sc = start_sidecar(
        upstream, "--capture.sample-percent", "100", "--spool.writer-nice", "19",
        "--capture.queue-max-age-seconds", str(MAX_AGE),
        "--spool.max-segment-age-seconds", "3600", "--redact.input-csv-columns", "0",
    )  # fmt: skip
    pin(sc.proc.pid, cpu)
    with busy(cpu, 2, tmp_path):
        answered = asyncio.run(traffic(sc.proxy_url, 3.0, 16, 5_000))
        before_kill = scrape(sc.admin_url)  # traffic is over: nothing more is queued or dropped
        sc.proc.kill()
    age = ("modeltap_sidecar_capture_queue_oldest_age_seconds", frozenset())
    assert age in before_kill  # the exposure is visible to an operator
    dropped = value(before_kill, OUTCOMES, outcome="dropped_queue_full")
    for other in ("skipped_disk", "write_error", "too_large", "dropped_redaction_failed"):
        assert value(before_kill, OUTCOMES, outcome=other) == 0, other

    # A new sidecar on the same spool seals what the killed one left open and uploads it all.
    after = start_sidecar(upstream, name="sidecar-after", spool=sc.spool, store=sc.store)
    wait_until(lambda: value(scrape(after.admin_url), "modeltap_sidecar_upload_pending_segments") == 0
               and not list(sc.spool.rglob("*.jsonl")), what="the spool uploaded")  # fmt: skip
    assert after.proc.stop() == 0
    stored = [r["eventMetadata"]["inferenceId"] for _, r in read_records(sc.store)]
    assert len(stored) == len(set(stored))
    missing = {rid for rid, _, _ in answered} - set(stored)
    lost = len(missing) - dropped  # answered, accepted into the queue, and gone with the kill
    assert lost >= 0
    bound = most_within(answered, MAX_AGE, SLACK)
    print(f"answered {len(answered)}, dropped (counted) {dropped:.0f}, lost to SIGKILL {lost:.0f}, "
          f"bound {bound} (records within {MAX_AGE} s)")  # fmt: skip
    assert lost <= bound
