"""Small objects profiled in batches give the window a per-object, record-by-record read gives:
CSV and JSON objects mixed (different schemas are never concatenated), bad lines, a damaged
object, records outside the window."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from analyzer import object_batches
from analyzer.data_quality.result import DataResult
from analyzer.errors import DataError
from analyzer.job import run_window
from analyzer.object_profile import profile_capture_records
from analyzer.payloads import PayloadParser
from analyzer.profile import Profile
from analyzer.results import RunResult
from analyzer.scaleout import object_job, profile_object_part
from analyzer.window import ReadStats, Window
from modeltap.core.store.local import LocalStore
from tests.analyzer.test_engine import assert_same_profile
from tests.analyzer.test_job import T0, baseline


def record(i: int, json_payload: bool) -> bytes:
    when = T0 + dt.timedelta(seconds=7 * i)
    a, b = (i % 13) / 4, (i % 5) - 2
    payload = (
        {"data": orjson.dumps({"instances": [[a, b]]}).decode(), "encoding": "JSON"}
        if json_payload
        else {"data": f"{a},{b}", "encoding": "CSV"}
    )
    rec = {"captureData": {"endpointInput": payload},
           "eventMetadata": {"inferenceTime": f"{when:%Y-%m-%dT%H:%M:%SZ}"}}  # fmt: skip
    return orjson.dumps(rec)


def test_batched_window_equals_record_by_record(tmp_path: Path) -> None:
    captures = LocalStore(tmp_path / "captures")
    objects: dict[str, bytes] = {}
    for n in range(40):
        lines = [record(n * 20 + i, json_payload=n % 3 == 0) for i in range(20)]
        if n % 7 == 0:
            lines.append(b"{torn")
        body = b"\n".join(lines) + b"\n"
        key = f"ep/v1/2026/03/01/{10 + n // 25}/{n:03d}.jsonl" + (".gz" if n % 5 == 0 else "")
        objects[key] = gzip.compress(body) if key.endswith(".gz") else body
    objects["ep/v1/2026/03/01/10/999.jsonl.gz"] = b"\x1f\x8bdamaged"
    for key, body in objects.items():
        asyncio.run(captures.put(key, body, content_type="x"))
    target = baseline()
    window = Window(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=80))
    batched = asyncio.run(run_window(captures, None, target, window, evaluate=None))

    parser = PayloadParser(list(target.baseline.columns))
    expected: Profile | None = None
    read = ReadStats()
    for key in sorted(objects):
        prof, r, _, _ = profile_capture_records(key, objects[key], window, parser, target.baseline)
        read.merge(r)
        if prof is not None:
            expected = prof if expected is None else expected.merge(prof)
    data = batched.sections["data"]
    assert isinstance(data, DataResult)
    assert expected is not None and data.window is not None
    assert_same_profile(data.window, expected)
    assert (batched.read.objects, batched.read.records, batched.read.outside_window) == (
        read.objects, read.records, read.outside_window,
    )  # fmt: skip
    assert (batched.read.bad_lines, batched.read.bad_objects) == (read.bad_lines, read.bad_objects)
    assert sorted(batched.read.bad_keys) == sorted(read.bad_keys)


class _StreamOnly(LocalStore):
    """A store whose whole-object ``get`` refuses uncompressed objects: they must be streamed."""

    async def get(self, key: str) -> bytes:
        assert key.endswith(".gz"), f"{key} read whole"
        return await super().get(key)


def test_large_objects_are_streamed_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(object_batches, "CHUNK_BYTES", 2_000)  # every object here is "large"
    captures = _StreamOnly(tmp_path / "captures")
    objects: dict[str, bytes] = {}
    for n in range(4):
        body = b"\n".join(record(n * 300 + i, json_payload=n == 1) for i in range(300)) + b"\n"
        key = f"ep/v1/2026/03/01/10/{n:03d}.jsonl" + (".gz" if n == 3 else "")
        objects[key] = gzip.compress(body) if n == 3 else body
    for key, body in objects.items():
        asyncio.run(captures.put(key, body, content_type="x"))
    target = baseline()
    window = Window(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=80))

    async def run() -> RunResult:
        # One thread for every to_thread: the reader waits there for pieces, which the store
        # must therefore read elsewhere (it hung when LocalStore read them with to_thread).
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        return await asyncio.wait_for(
            run_window(captures, None, target, window, evaluate=None), 120
        )

    streamed = asyncio.run(run())

    parser = PayloadParser(list(target.baseline.columns))
    expected: Profile | None = None
    read = ReadStats()
    for key in sorted(objects):
        prof, r, _, _ = profile_capture_records(key, objects[key], window, parser, target.baseline)
        read.merge(r)
        if prof is not None:
            expected = prof if expected is None else expected.merge(prof)
    data = streamed.sections["data"]
    assert isinstance(data, DataResult)
    assert expected is not None and data.window is not None
    assert_same_profile(data.window, expected)
    assert (streamed.read.objects, streamed.read.records, streamed.read.outside_window) == (
        read.objects, read.records, read.outside_window,
    )  # fmt: skip


def test_an_engine_worker_streams_capture_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``profile_object_part`` (a pool or Dask worker) reads an uncompressed capture object in
    pieces, with the record reader's result; a missing object is still a DataError."""
    monkeypatch.setattr(LocalStore, "get", _StreamOnly.get)  # the worker opens its own store
    captures = LocalStore(tmp_path / "captures")
    body = b"\n".join(record(i, json_payload=i % 2 == 0) for i in range(300)) + b"\n"
    asyncio.run(captures.put("ep/v1/2026/03/01/10/000.jsonl", body, content_type="x"))
    target = baseline()
    window = Window(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=80))
    job = object_job(target, window, captures.uri, None)
    # (the worker's loop and store stay open for this thread, as in a worker, until exit)
    prof, read, stats, _ = profile_object_part(job, "ep/v1/2026/03/01/10/000.jsonl")
    with pytest.raises(DataError, match="cannot read the object"):
        profile_object_part(job, "ep/v1/2026/03/01/10/missing.jsonl")
    parser = PayloadParser(list(target.baseline.columns))
    exp, r, s, _ = profile_capture_records(
        "ep/v1/2026/03/01/10/000.jsonl", body, window, parser, target.baseline
    )
    assert prof is not None and exp is not None
    assert_same_profile(prof, exp)
    assert (read.records, read.outside_window, stats.rows) == (r.records, r.outside_window, s.rows)
