"""Capture objects are untrusted bytes: parse_records counts what it cannot read, never raises."""

from __future__ import annotations

import datetime as dt
import gzip

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.window import Window, decode_object, parse_records
from tests.fuzz.strategies import FUZZ, JSON, records

WINDOW = Window(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
GOOD = orjson.dumps(
    {
        "captureData": {"endpointInput": {"data": "1,2", "encoding": "CSV"}},
        "eventMetadata": {"inferenceTime": "2024-01-01T10:00:00Z", "eventId": "e"},
    }
)


def check(key: str, data: bytes) -> None:
    recs, stats = parse_records(key, data, WINDOW)
    assert stats.objects == 1 and stats.records == len(recs)
    assert all(isinstance(r, dict) and isinstance(r["captureData"], dict) for r in recs)
    if stats.bad_objects:
        assert recs == [] and stats.bad_keys == [key]
    recs_all, _ = parse_records(key, data)  # no window: nothing filtered by time
    assert len(recs_all) >= len(recs)


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["a/b.jsonl", "a/b.jsonl.gz"]))
@example(b"\x1f\x8b\x08\x00garbage", "a/b.jsonl")
@example(GOOD + b"\n" + b'{"captureData": {}, "eventMetadata": [1]}', "a/b.jsonl")
@example(b'{"captureData": {}, "eventMetadata": {"inferenceTime": "2024-01-01Z"}}', "k")
@example(b'{"captureData": {}, "eventMetadata": {"inferenceTime": "2024-01-01T10:00Z"}}', "k")
def test_any_bytes_parse_or_are_counted(data: bytes, key: str) -> None:
    check(key, data)


@FUZZ
@given(st.lists(records() | JSON, max_size=8), st.booleans())
def test_any_json_lines_parse_or_are_counted(lines: list[object], gz: bool) -> None:
    data = b"\n".join(orjson.dumps(line) for line in lines)
    key = "a/b.jsonl.gz" if gz else "a/b.jsonl"
    check(key, gzip.compress(data) if gz else data)


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(["x.jsonl", "x.jsonl.gz"]))
def test_decode_object_raises_only_value_error(data: bytes, key: str) -> None:
    try:
        out = decode_object(key, data)
    except ValueError:
        return
    assert isinstance(out, bytes)
