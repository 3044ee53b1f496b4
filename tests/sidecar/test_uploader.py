from __future__ import annotations

import asyncio
import gc
import gzip
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import sidecar.uploader as uploader_module
from modeltap.core.errors import StoreError
from modeltap.core.store.local import LocalStore
from sidecar.config import StoreConfig
from sidecar.metrics import SidecarMetrics
from sidecar.spool import SpoolUsage
from sidecar.uploader import Uploader, backoff_delay

KEY = "ep/v1/2023/11/14/23/00-00-000-u1.jsonl"


class FlakyStore(LocalStore):
    """A local store that fails the first ``failures`` puts (a fault injector for unit tests)."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.puts = 0

    async def put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None = None
    ) -> None:
        self.puts += 1
        if self.puts <= self.failures:
            raise StoreError("injected 503", reason="server_error")
        await super().put(key, data, content_type=content_type, content_encoding=content_encoding)


def segment(spool: Path, body: bytes = b'{"a":1}\n{"b":2}\n') -> Path:
    path = spool / KEY
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    return path


def sample(metrics: SidecarMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_retries_until_stored_then_deletes(tmp_path: Path) -> None:
    spool, store_dir = tmp_path / "spool", tmp_path / "store"
    seg = segment(spool)
    metrics = SidecarMetrics(CollectorRegistry())
    store = FlakyStore(store_dir, failures=2)
    cfg = StoreConfig(retry_base_seconds=0.01, retry_max_seconds=0.02)
    up = Uploader(spool, store, cfg, metrics, SpoolUsage(lambda _v: None))
    task = asyncio.create_task(up.run())
    for _ in range(500):  # stored = counted, which happens after the local delete
        if sample(metrics, "modeltap_sidecar_upload_objects_total") == 1:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert not seg.exists()
    assert (store_dir / KEY).read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert store.puts == 3
    assert sample(metrics, "modeltap_sidecar_upload_retries_total") == 2
    assert sample(metrics, "modeltap_sidecar_upload_failures_total", reason="server_error") == 2
    assert sample(metrics, "modeltap_sidecar_upload_records_total") == 2
    assert sample(metrics, "modeltap_sidecar_upload_pending_segments") == 0


async def test_drain_leaves_unstored_segments_on_disk(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    seg = segment(spool)
    metrics = SidecarMetrics(CollectorRegistry())
    cfg = StoreConfig(retry_base_seconds=0.05, retry_max_seconds=0.05)
    up = Uploader(
        spool,
        FlakyStore(tmp_path / "store", failures=10**6),
        cfg,
        metrics,
        SpoolUsage(lambda _v: None),
    )
    assert await up.drain(0.3) == 1
    assert seg.exists()
    assert sample(metrics, "modeltap_sidecar_upload_pending_segments") == 1


async def test_gzip_objects(tmp_path: Path) -> None:
    spool, store_dir = tmp_path / "spool", tmp_path / "store"
    segment(spool)
    metrics = SidecarMetrics(CollectorRegistry())
    up = Uploader(
        spool, LocalStore(store_dir), StoreConfig(gzip=True), metrics, SpoolUsage(lambda _v: None)
    )
    assert await up.drain(5) == 0
    assert gzip.decompress((store_dir / f"{KEY}.gz").read_bytes()) == b'{"a":1}\n{"b":2}\n'


def test_backoff_is_capped_full_jitter() -> None:
    assert backoff_delay(0, 0.5, 30, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, 0.5, 30, rand=lambda: 1.0) == 4.0
    assert backoff_delay(50, 0.5, 30, rand=lambda: 1.0) == 30
    assert backoff_delay(5, 0.5, 30, rand=lambda: 0.0) == 0.0


async def test_local_store_links_sealed_segments_without_copying(tmp_path: Path) -> None:
    spool, store_dir = tmp_path / "spool", tmp_path / "store"
    seg = segment(spool)
    inode = seg.stat().st_ino
    metrics = SidecarMetrics(CollectorRegistry())
    up = Uploader(spool, LocalStore(store_dir), StoreConfig(), metrics, SpoolUsage(lambda _v: None))
    up.notify_sealed(seg, 2)
    assert await up.drain(5) == 0
    stored = store_dir / KEY
    assert stored.read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert stored.stat().st_ino == inode  # the same file, linked into place
    assert stored.stat().st_nlink == 1 and not seg.exists()
    assert sample(metrics, "modeltap_sidecar_upload_records_total") == 2


class _Body(bytes):
    """bytes that say when they are freed (bytes cannot have weak references)."""

    freed = 0

    def __del__(self) -> None:
        _Body.freed += 1


async def test_a_segment_waiting_for_a_retry_is_not_held_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bench/soak: with the store down, each segment waiting for its next attempt used to keep its
    # bytes (and, through the failure's traceback, the failed request) in memory.
    spool, store_dir = tmp_path / "spool", tmp_path / "store"
    segment(spool)
    reads: list[int] = []
    read_segment = uploader_module._read_segment

    def read(path: Path, compress: bool) -> tuple[bytes, int, int]:
        body, raw_size, records = read_segment(path, compress)
        reads.append(len(body))
        return _Body(body), raw_size, records

    monkeypatch.setattr(uploader_module, "_read_segment", read)
    monkeypatch.setattr(_Body, "freed", 0)
    monkeypatch.setattr(uploader_module, "backoff_delay", lambda *_a, **_k: 0.2)
    store = FlakyStore(store_dir, failures=1)
    metrics = SidecarMetrics(CollectorRegistry())
    up = Uploader(spool, store, StoreConfig(), metrics, SpoolUsage(lambda _v: None))
    was_enabled = gc.isenabled()
    gc.disable()  # reference counting alone must let go of the failed attempt
    try:
        task = asyncio.create_task(up.run())
        for _ in range(200):
            if sample(metrics, "modeltap_sidecar_upload_retries_total") == 1:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)  # the uploader is in its 0.2 s wait before the retry
        assert store.puts == 1 and len(reads) == 1
        assert _Body.freed == 1, "the segment's bytes are held while it waits for a retry"
        for _ in range(200):
            if sample(metrics, "modeltap_sidecar_upload_objects_total") == 1:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        if was_enabled:
            gc.enable()
    assert store.puts == 2 and len(reads) == 2  # read again for the retry
    assert (store_dir / KEY).read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert sample(metrics, "modeltap_sidecar_upload_records_total") == 2
