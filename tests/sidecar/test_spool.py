from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from modeltap.core import jsonesc
from modeltap.core.record import CaptureItem, PayloadEncoder, encode_record
from sidecar import segment as segment_module
from sidecar import spool as spool_module
from sidecar.config import CaptureConfig, SpoolConfig
from sidecar.genai import GenAIMetrics, GenAIReader
from sidecar.metrics import SidecarMetrics
from sidecar.spool import OPEN_SUFFIX, SEALED_SUFFIX, SpoolUsage, SpoolWriter, recover

HOUR = 1_700_002_800.0  # 2023-11-14T23:00:00Z
counts: list[int] = []  # records per sealed segment, as the writer reports them


def item(t: float, body: bytes = b"1,2,3") -> CaptureItem:
    return CaptureItem(
        t, "POST", "/invocations", 200, 0.001, None, None, body, "text/csv", b"0.5", "text/csv"
    )


class Disk:
    def __init__(self, ratio: float) -> None:
        self.ratio = ratio

    def __call__(self, _path: Path) -> float:
        return self.ratio


def make(
    tmp_path: Path, disk: Disk | None = None, **spool_kw: object
) -> tuple[SpoolWriter, SidecarMetrics, list[Path]]:
    metrics = SidecarMetrics(CollectorRegistry())
    sealed: list[Path] = []
    counts.clear()
    cfg = SpoolConfig(dir=tmp_path / "spool", flush_interval_seconds=0.01, **spool_kw)  # type: ignore[arg-type]
    writer = SpoolWriter(
        cfg, CaptureConfig(endpoint_name="ep", variant_name="v1", queue_size=5000), metrics,
        SpoolUsage(metrics.spool_bytes.set), on_sealed=lambda path, n: (sealed.append(path), counts.append(n)), disk_usage=disk or Disk(0.1),
    )  # fmt: skip
    return writer, metrics, sealed


def outcome(metrics: SidecarMetrics, name: str) -> float:
    return (
        metrics.registry.get_sample_value(
            "modeltap_sidecar_capture_records_total", {"outcome": name}
        )
        or 0.0
    )


@pytest.mark.parametrize("direct_io", [True, False])
def test_records_land_in_hourly_segments_sealed_on_stop(tmp_path: Path, direct_io: bool) -> None:
    writer, metrics, sealed = make(tmp_path, direct_io=direct_io)
    writer.start()
    for i in range(10):
        writer.offer(item(HOUR - 5 + i))  # 5 records in hour 22, 5 in hour 23
    writer.stop(10)
    assert [p.relative_to(tmp_path / "spool").parts[:6] for p in sealed] == [
        ("ep", "v1", "2023", "11", "14", "22"),
        ("ep", "v1", "2023", "11", "14", "23"),
    ]
    assert all(p.name.endswith(SEALED_SUFFIX) and not p.name.endswith(OPEN_SUFFIX) for p in sealed)
    assert sealed[1].name.startswith("00-00-000-")
    lines = [orjson.loads(x) for p in sealed for x in p.read_bytes().splitlines()]
    assert len(lines) == 10
    assert counts == [5, 5]
    assert outcome(metrics, "spooled") == 10
    assert metrics.registry.get_sample_value("modeltap_sidecar_spool_bytes") == sum(
        p.stat().st_size for p in sealed
    )


def test_segments_seal_on_size_and_age(tmp_path: Path) -> None:
    writer, _, sealed = make(tmp_path, max_segment_bytes=1000, max_segment_age_seconds=0.2)
    writer.start()
    for _ in range(3):
        writer.offer(item(HOUR, body=b"x" * 900))
    deadline = time.monotonic() + 5
    while len(sealed) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(sealed) == 3  # each record passes 1000 bytes: one segment each
    writer.offer(item(HOUR, body=b"y"))
    while len(sealed) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(sealed) == 4  # sealed by age, without a stop
    writer.stop(5)


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    metrics = SidecarMetrics(CollectorRegistry())
    writer = SpoolWriter(
        SpoolConfig(dir=tmp_path), CaptureConfig(queue_size=3), metrics, SpoolUsage(lambda _v: None)
    )
    for _ in range(5):
        writer.offer(item(HOUR))  # the writer thread is not running: nothing drains
    assert outcome(metrics, "dropped_queue_full") == 2
    assert metrics.registry.get_sample_value("modeltap_sidecar_capture_queue_records") == 3


def test_disk_cutoff_pauses_and_resumes(tmp_path: Path) -> None:
    disk = Disk(0.80)
    writer, metrics, sealed = make(tmp_path, disk)
    writer.start()
    assert writer.paused
    writer.offer(item(HOUR))
    deadline = time.monotonic() + 5
    while outcome(metrics, "skipped_disk") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcome(metrics, "skipped_disk") == 1
    assert metrics.registry.get_sample_value("modeltap_sidecar_capture_paused") == 1
    disk.ratio = 0.5
    while writer.paused and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not writer.paused
    writer.offer(item(HOUR))
    writer.stop(5)
    assert outcome(metrics, "spooled") == 1
    assert len(sealed) == 1


def test_recover_cuts_torn_lines_and_seals(tmp_path: Path) -> None:
    metrics = SidecarMetrics(CollectorRegistry())
    d = tmp_path / "ep" / "v1" / "2023" / "11" / "14" / "23"
    d.mkdir(parents=True)
    (d / f"a{OPEN_SUFFIX}").write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    (d / f"b{OPEN_SUFFIX}").write_bytes(b'{"half')
    (d / f"c{SEALED_SUFFIX}").write_bytes(b'{"d":4}\n')
    usage = SpoolUsage(lambda _v: None)
    assert recover(tmp_path, metrics, usage) == 1
    assert (d / f"a{SEALED_SUFFIX}").read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert not (d / f"b{OPEN_SUFFIX}").exists() and not (d / f"b{SEALED_SUFFIX}").exists()
    assert metrics.registry.get_sample_value("modeltap_sidecar_spool_truncated_lines_total") == 2
    assert usage.bytes == len(b'{"a":1}\n{"b":2}\n') + len(b'{"d":4}\n')


def test_queue_is_bounded_in_bytes_too(tmp_path: Path) -> None:
    metrics = SidecarMetrics(CollectorRegistry())
    writer = SpoolWriter(
        SpoolConfig(dir=tmp_path), CaptureConfig(queue_size=100, queue_max_bytes=1000), metrics,
        SpoolUsage(lambda _v: None),
    )  # fmt: skip
    for _ in range(4):
        writer.offer(item(HOUR, body=b"x" * 300))  # 303 payload bytes each (with b"0.5")
    assert outcome(metrics, "dropped_queue_full") == 1


def test_payload_held_beyond_the_queue_budget_is_one_bounded_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer busy with a batch (its disk write blocked) while requests keep offering: the
    # payload bytes held in memory stay within queue_max_bytes plus one bounded batch.
    monkeypatch.setattr(spool_module, "_BATCH_BYTES", 300_000)
    # The segment's writes block (os.pwrite with direct I/O, os.write without; the os module's
    # attributes, which a compiled sidecar.segment calls through too).
    release, writing = threading.Event(), threading.Event()

    def blocking(real: Callable[..., int]) -> Callable[..., int]:
        def write(*args: Any) -> int:
            writing.set()
            release.wait(10)
            return real(*args)

        return write

    monkeypatch.setattr(os, "pwrite", blocking(os.pwrite))
    monkeypatch.setattr(os, "write", blocking(os.write))
    budget, body = 2_000_000, b"x" * 99_997  # 100,000 payload bytes with the output's b"0.5"
    metrics = SidecarMetrics(CollectorRegistry())
    writer = SpoolWriter(
        SpoolConfig(dir=tmp_path, flush_interval_seconds=0.01),
        CaptureConfig(queue_size=1000, queue_max_bytes=budget), metrics, SpoolUsage(lambda _v: None),
    )  # fmt: skip
    for _ in range(30):
        writer.offer(item(HOUR, body=body))  # the budget admits 20
    writer.start()
    try:
        assert writing.wait(5)  # the writer took its first batch and is stuck writing it
        for _ in range(30):
            writer.offer(item(HOUR, body=body))
        accepted = 60 - outcome(metrics, "dropped_queue_full")
        # 20 at first, then as many as the writer took: 3 (300,000 bytes), not all 20.
        assert accepted == 23
    finally:
        release.set()
        writer.stop(10)
    assert outcome(metrics, "spooled") == 23


def test_writer_offers_the_gil_while_it_encodes_a_large_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Encoding holds the GIL (orjson, compiled code) and the event loop needs it for every
    # request: the writer must offer it (time.sleep(0)) every _YIELD_BYTES of records, not once
    # per batch. time.sleep is patched, not spool's helpers: compiled code binds those.
    offers: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds == 0:
            offers.append(seconds)
        real_sleep(seconds)

    writer, metrics, sealed = make(tmp_path)
    body = b"1.5,2.25\n" * 1_500  # 13,500 bytes, below jsonesc.NOGIL_BYTES: escaped holding it
    for i in range(150):
        writer.offer(item(HOUR + i * 0.001, body=body))
    monkeypatch.setattr(time, "sleep", sleep)
    writer.start()  # one batch: 150 records, 2.7 MB payload (under _BATCH_BYTES)
    writer.stop(10)
    monkeypatch.undo()

    assert outcome(metrics, "spooled") == 150
    lines = b"".join(p.read_bytes() for p in sealed).splitlines(keepends=True)
    assert len({len(line) for line in lines}) == 1  # equal records: an offer every few
    per_offer = -(-spool_module._YIELD_BYTES // len(lines[0]))  # records that reach 64 KiB: 5
    assert len(offers) == 150 // per_offer
    ids = {orjson.loads(line)["eventMetadata"]["eventId"] for line in lines}
    assert len(ids) == 150  # ids made in runs of _IDS_AT_ONCE are still one per record


def test_large_payloads_escaped_without_the_gil_need_no_further_offers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compiled, a payload of jsonesc.NOGIL_BYTES or more is escaped without the GIL: that gave
    # the event loop its turn, so only the rest of the record counts towards _YIELD_BYTES. In
    # pure Python (orjson holds the GIL) every byte counts.
    offers: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds == 0:
            offers.append(seconds)
        real_sleep(seconds)

    writer, metrics, _ = make(tmp_path)
    body = b"1.5,2.25;" * 4_000  # 36,000 bytes (nothing to escape); a record of about 37 KB
    for i in range(40):
        writer.offer(item(HOUR + i * 0.001, body=body))
    monkeypatch.setattr(time, "sleep", sleep)
    writer.start()
    writer.stop(10)
    monkeypatch.undo()
    assert outcome(metrics, "spooled") == 40
    assert len(offers) == (0 if jsonesc.compiled else 40 // 2)


def thread_nice(native_id: int) -> int:
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19, counted after "pid (comm)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
@pytest.mark.parametrize("nice", [0, 10, 19])
def test_writer_thread_runs_at_lower_priority_than_serving(tmp_path: Path, nice: int) -> None:
    writer, _, _ = make(tmp_path, writer_nice=nice)
    writer.start()
    try:
        worker = writer._worker
        assert worker is not None and worker.native_id is not None
        deadline = time.monotonic() + 5
        base = os.nice(0)
        expected = min(19, base + nice)
        while thread_nice(worker.native_id) != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert thread_nice(worker.native_id) == expected
        assert thread_nice(threading.get_native_id()) == base  # the caller's thread is untouched
    finally:
        writer.stop(5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_queue_is_bounded_by_the_age_of_its_oldest_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a SIGKILL loses is what is not yet written: once the oldest of it is older than
    # capture.queue_max_age_seconds, nothing joins it, so it spans at most that much traffic.
    clock = Clock()
    monkeypatch.setattr(spool_module.time, "monotonic", clock)
    metrics = SidecarMetrics(CollectorRegistry())
    writer = SpoolWriter(
        SpoolConfig(dir=tmp_path), CaptureConfig(queue_max_age_seconds=1.0), metrics,
        SpoolUsage(lambda _v: None),
    )  # fmt: skip
    age = "modeltap_sidecar_capture_queue_oldest_age_seconds"
    assert metrics.registry.get_sample_value(age) == 0
    writer.offer(item(HOUR))  # the writer thread is not running: nothing is written
    clock.now += 0.6
    writer.offer(item(HOUR))
    clock.now += 0.4  # the oldest is exactly 1 s old: still within the bound
    writer.offer(item(HOUR))
    assert outcome(metrics, "dropped_queue_full") == 0
    clock.now += 0.01
    writer.offer(item(HOUR))
    assert outcome(metrics, "dropped_queue_full") == 1
    assert metrics.registry.get_sample_value(age) == pytest.approx(1.01)
    assert metrics.registry.get_sample_value("modeltap_sidecar_capture_queue_records") == 3


def test_oldest_age_is_zero_once_everything_is_written(tmp_path: Path) -> None:
    writer, metrics, _ = make(tmp_path)
    writer.start()
    for i in range(20):
        writer.offer(item(HOUR + i))
    writer.stop(10)
    assert outcome(metrics, "spooled") == 20
    assert writer.oldest_age() == 0
    assert (
        metrics.registry.get_sample_value("modeltap_sidecar_capture_queue_oldest_age_seconds") == 0
    )


def test_byte_budget_is_never_exceeded_and_skips_are_counted(tmp_path: Path) -> None:
    budget = 10_000
    writer, metrics, _ = make(tmp_path, max_bytes=budget)
    assert metrics.registry.get_sample_value("modeltap_sidecar_spool_max_bytes") == budget
    writer.start()
    for i in range(100):  # about 300 bytes a record: 3 budgets
        writer.offer(item(HOUR + i, body=b"7" * 100))
    writer.stop(10)
    spooled, skipped = outcome(metrics, "spooled"), outcome(metrics, "skipped_disk")
    assert spooled + skipped == 100 and 0 < spooled < 100
    written = sum(p.stat().st_size for p in (tmp_path / "spool").rglob("*.jsonl"))
    assert written == metrics.registry.get_sample_value("modeltap_sidecar_spool_bytes")
    assert budget - 400 < written <= budget  # filled up to the budget, never past it
    assert writer.paused
    assert metrics.registry.get_sample_value("modeltap_sidecar_capture_paused") == 1


def genai_item(record: bool) -> CaptureItem:
    """An OpenAI-style exchange on genai.paths; ``record=False``: unsampled, for the metrics only."""
    choice = {"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}
    answer = orjson.dumps({"model": "m", "choices": [choice]})
    return CaptureItem(
        HOUR, "POST", "/v1/chat/completions", 200, 0.001, None, None, b'{"model": "m"}',
        "application/json", answer, "application/json", genai=True, record=record,
    )  # fmt: skip


def genai_writer(
    tmp_path: Path, disk: Disk, queue_size: int
) -> tuple[SpoolWriter, SidecarMetrics, CollectorRegistry]:
    metrics, registry = SidecarMetrics(CollectorRegistry()), CollectorRegistry()
    writer = SpoolWriter(
        SpoolConfig(dir=tmp_path / "spool", flush_interval_seconds=0.01),
        CaptureConfig(queue_size=queue_size), metrics, SpoolUsage(lambda _v: None),
        disk_usage=disk, genai=GenAIReader(GenAIMetrics(registry, 5)),
    )  # fmt: skip
    return writer, metrics, registry


def test_a_full_queue_counts_unsampled_genai_exchanges_apart_from_dropped_captures(
    tmp_path: Path,
) -> None:
    writer, metrics, registry = genai_writer(tmp_path, Disk(0.1), queue_size=1)
    writer.offer(item(HOUR))  # the writer thread is not running: the queue stays full
    for _ in range(3):
        writer.offer(genai_item(record=False))
    writer.offer(genai_item(record=True))
    assert outcome(metrics, "dropped_queue_full") == 1  # the sampled one only
    assert registry.get_sample_value("modeltap_sidecar_genai_dropped_exchanges_total") == 4


def test_genai_metrics_go_on_while_capture_is_paused(tmp_path: Path) -> None:
    writer, metrics, registry = genai_writer(tmp_path, Disk(0.80), queue_size=100)
    writer.start()
    try:
        assert writer.paused
        for _ in range(3):
            writer.offer(genai_item(record=False))  # what the request path offers while paused
    finally:
        writer.stop(10)
    responses = {"end": "complete", "model": "m"}
    assert registry.get_sample_value("modeltap_sidecar_genai_responses_total", responses) == 3
    assert outcome(metrics, "skipped_disk") == 0  # no capture was skipped: none was sampled
    assert not list((tmp_path / "spool").rglob("*.jsonl"))


@pytest.mark.parametrize("direct_io", [True, False])
def test_records_in_the_spool_are_encode_records_whatever_their_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_io: bool
) -> None:
    # Records are built in place in the staging buffer; here a 64 KiB one, so that some do not
    # fit after others (the staged ones are written first) and some not at all (built as bytes).
    monkeypatch.setattr(segment_module, "STAGE_BYTES", 64 << 10)
    row = b'5.1,3.5,"a\\b",\xc3\xa9\t\n'
    bodies = [(b"x", "text/csv"), (row * 1500, "text/csv"), (row * 4000, "text/csv")]
    bodies += [(b"\xff\xfe" * 9000, "text/csv"), (b'{"a": [1, 2]}' * 2000, "application/json")]
    bodies += [(os.urandom(30_000), "application/octet-stream"), (b"", "text/csv")]
    items = [
        CaptureItem(HOUR + i, "POST", "/p", 200, 0.002, f"id-{i}", None, body, ctype, body[::-1], ctype)
        for i, (body, ctype) in enumerate(bodies * 3)
    ]  # fmt: skip
    writer, metrics, sealed = make(tmp_path, direct_io=direct_io)
    for it in items:
        writer.offer(it)
    writer.start()
    writer.stop(20)
    lines = [x for p in sealed for x in p.read_bytes().splitlines(keepends=True)]
    assert len(lines) == len(items) and outcome(metrics, "spooled") == len(items)
    encoder = PayloadEncoder(("text/csv",), ("application/json",))
    for line, it in zip(lines, items, strict=True):
        event_id = orjson.loads(line)["eventMetadata"]["eventId"]
        assert line == encode_record(it, encoder, event_id)


@given(st.one_of(st.floats(-1e15, 1e15), st.integers(-(10**12), 10**12).map(lambda k: k / 7)))
def test_records_are_grouped_by_the_hour_floor_division_gives(epoch_seconds: float) -> None:
    assert spool_module._epoch_hour(epoch_seconds) == int(epoch_seconds // 3600)
