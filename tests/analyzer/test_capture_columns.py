"""The columnar capture reader gives what the record-by-record reader gives: the same profile
(statistics.json), the same read and parse counts and failure reasons, on clean, mixed and
malformed objects."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.capture_columns import (
    GUNZIP_PIECE,
    DamagedObject,
    _chunks,
    _object_chunks,
    profile_capture_columns,
)
from analyzer.object_profile import profile_capture_records
from analyzer.object_stream import ObjectData, Pieces
from analyzer.payloads import PayloadParser
from analyzer.profile import Profile
from analyzer.statistics import profile_to_statistics
from analyzer.window import Window
from tests.fuzz.strategies import FUZZ, JSON, records

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
WINDOW = Window(T0, T0 + dt.timedelta(hours=1))
NAMES = ["a", "b", "c"]
BASELINE = Profile.empty()


def outcome(fn: Any, data: ObjectData, key: str = "ep/v/k.jsonl", **kw: Any) -> Any:
    try:
        prof, read, stats, columns = fn(key, data, WINDOW, PayloadParser(NAMES),
                                        BASELINE, **kw)  # fmt: skip
    except Exception as exc:  # both readers must fail alike (e.g. a nested value in a column)
        return type(exc).__name__
    stats_doc = None if prof is None else _nan_equal(profile_to_statistics(prof))
    return stats_doc, read, stats, sorted(columns)


def _nan_equal(doc: Any) -> Any:
    """``doc`` with each float NaN as the string "NaN": NaN != NaN would fail equal outcomes
    (e.g. the m2 of a value near 1e154, whose square overflows)."""
    if isinstance(doc, float) and doc != doc:
        return "NaN"
    if isinstance(doc, dict):
        return {k: _nan_equal(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_nan_equal(v) for v in doc]
    return doc


def same(data: bytes, **kw: Any) -> None:
    if data[:2] == b"\x1f\x8b":  # a gzipped object is also known by its key
        same_as(data, key="ep/v/k.jsonl.gz", **kw)
    same_as(data, **kw)


def same_as(data: bytes, **kw: Any) -> None:
    old = outcome(profile_capture_records, data, **kw)
    new = outcome(profile_capture_columns, data, **kw)
    assert new == old
    chunked = outcome(profile_capture_columns, data, chunk_bytes=64, **kw)
    if isinstance(old, tuple):  # per chunk: the same counts, the same rows
        assert isinstance(chunked, tuple)
        assert chunked[1:] == old[1:]
    for size in (1, 7, 100, 1 << 20):  # read in pieces: the same chunks, the same outcome
        assert outcome(profile_capture_columns, pieces(data, size), **kw) == new
        assert outcome(profile_capture_columns, pieces(data, size), chunk_bytes=64, **kw) == chunked


def pieces(data: bytes, size: int) -> Pieces:
    """``data`` as an object read in pieces of ``size`` bytes (``Store.get_stream``)."""
    return lambda: (data[i : i + size] for i in range(0, len(data), size))


def record(i: int, data: str, encoding: str = "CSV", when: str = "2024-01-01T00:10:00Z",
           model: str | None = None, output: Any = None) -> dict[str, Any]:  # fmt: skip
    ctype = "text/csv" if encoding == "CSV" else "application/json"
    rec: dict[str, Any] = {
        "captureData": {
            "endpointInput": {"observedContentType": ctype, "data": data, "encoding": encoding}
        },
        "eventMetadata": {"eventId": f"e{i}", "inferenceTime": when},
    }
    if output is not None:
        rec["captureData"]["endpointOutput"] = output
    if model is not None:
        rec["modeltap"] = {"targetModel": model}
    return rec


def lines(recs: list[Any]) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in recs) + b"\n"


CLEAN_CSV = [record(i, f"{i},{i / 3},c{i % 4}") for i in range(50)]
CLEAN_JSON = [record(i, orjson.dumps({"instances": [[i, i / 3, f"c{i % 4}"]]}).decode(), "JSON")
              for i in range(50)]  # fmt: skip


@pytest.mark.parametrize(
    "recs",
    [
        CLEAN_CSV,
        CLEAN_JSON,
        CLEAN_CSV[:20] + CLEAN_JSON[:20] + CLEAN_CSV[20:],  # CSV and JSON mixed
        [*CLEAN_CSV, record(99, "1,2,3,4")],  # a ragged CSV row
        [*CLEAN_CSV, record(99, "\r\n")],  # an empty payload
        [*CLEAN_CSV, record(99, "1,2", when="2024-01-01T02:00:00Z")],  # outside the window
        [*CLEAN_CSV, record(99, "1,2", when="2024-01-01T00:10:00.5Z")],  # fractional seconds
        [*CLEAN_CSV, record(99, "1,2", when="yesterday")],  # a bad inferenceTime
        [*CLEAN_CSV, b"not json", b"[1, 2]", b'{"captureData": 3}', b"{}", b""],  # bad lines
        [*CLEAN_JSON, record(99, "{not json", "JSON"), record(98, '{"instances": 3}', "JSON")],
        [*CLEAN_CSV, record(99, "MSwy", "BASE64")],  # base64: the per-record path, same result
        [
            *CLEAN_JSON,
            {
                "captureData": {"endpointOutput": {"data": "1", "encoding": "CSV"}},
                "eventMetadata": {"inferenceTime": "2024-01-01T00:10:00Z"},
            },
        ],
    ],
)
def test_same_as_record_reader(recs: list[Any]) -> None:
    same(lines(recs))
    same(gzip.compress(lines(recs)))


def test_target_model_and_outputs() -> None:
    out = {"observedContentType": "text/csv", "data": "0.5", "encoding": "CSV"}
    recs = [record(i, f"{i},1,x", model=("m1" if i % 3 else "m2"), output=out) for i in range(30)]
    same(lines(recs), target_model="m1", outputs=PayloadParser(["p"], side="endpointOutput"))
    two = {"observedContentType": "text/csv", "data": "0.5\n0.7", "encoding": "CSV"}
    recs.append(record(99, "1,2,3", output=two))  # a record whose sides disagree
    same(lines(recs), outputs=PayloadParser(["p"], side="endpointOutput"))


def test_damaged_gzip() -> None:
    same(b"\x1f\x8b\x08\x00garbage")


@FUZZ
@given(st.lists(records() | JSON | st.sampled_from(CLEAN_CSV + CLEAN_JSON), max_size=12),
       st.booleans())  # fmt: skip
@example([{"captureData": {}, "eventMetadata": {"inferenceTime": "2024-01-01T00:00:00Z"}}], False)
@example([record(0, "1.3407807929942597e+154", when="2024-01-01T00:00:00Z")], False)  # m2: NaN
@example([record(0, '"')], False)  # an unclosed quote: not run into a line end after it
@example([record(0, '"'), record(1, "0,0.0,c0")], False)  # ... nor into the next payload
@example([record(0, "{}", "JSON"), record(1, '{"instances":[[0,0.0,"c0"]]}', "JSON")], False)
@example([record(i, f"{v},1,x") for i, v in enumerate(["1.7e308", "1.7e308", "-1.7e308"])],
         False)  # overflowing moments: NaN in both readers  # fmt: skip
def test_any_object_reads_alike(recs: list[Any], gz: bool) -> None:
    data = lines(recs)
    same(gzip.compress(data) if gz else data)


def test_a_nested_value_alone_in_its_chunk_reads_as_in_the_whole_object() -> None:
    """``[null, []]`` beside a CSV row: in the whole object column b is text; a chunk holding
    only the JSON record must not fail on the nested value (it raised DataError)."""
    data = lines([record(0, "0,0.0,c0"), record(1, "[null,[]]", "JSON")])
    assert isinstance(outcome(profile_capture_records, data), tuple)
    same(data)


@FUZZ
@given(st.binary(max_size=300) | st.lists(st.sampled_from([b"\n", b"ab", b"{}\n"])).map(b"".join),
       st.integers(1, 40), st.integers(1, 50))  # fmt: skip
def test_pieces_are_cut_into_the_chunks_of_the_whole_object(data: bytes, piece: int,
                                                            size: int) -> None:  # fmt: skip
    whole = [bytes(c) for c in _chunks(data, size)]
    streamed = list(_object_chunks("k.jsonl", pieces(data, piece), size))
    if data[:2] != b"\x1f\x8b":
        assert streamed == whole


def gzip_objects() -> st.SearchStrategy[bytes]:
    """Gzip data as objects may hold it: one or more members (zero padding between them),
    then maybe cut short, a byte changed or bytes appended."""
    text = st.lists(st.sampled_from([b"\n", b"ab", b"{}\n", b"x" * 700]), max_size=30).map(b"".join)
    members = st.lists(st.tuples(text, st.integers(0, 3)), min_size=1, max_size=3).map(
        lambda ms: b"".join(gzip.compress(t, mtime=0) + b"\x00" * pad for t, pad in ms)
    )

    def damage(data: bytes, how: int, at: int, byte: int) -> bytes:
        at %= len(data)
        if how == 1:
            return data[:at]
        if how == 2:
            return data[:at] + bytes([byte]) + data[at + 1 :]
        if how == 3:
            return data + bytes([byte]) * (at % 5 + 1)
        return data

    return st.builds(damage, members, st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 255))


@FUZZ
@given(gzip_objects(), st.integers(1, 40), st.integers(1, 900))
def test_a_gzipped_object_is_unpacked_as_it_is_read_as_gzip_decompress_reads_it(
    data: bytes, piece: int, size: int
) -> None:
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        text = None
    for source in (data, pieces(data, piece)):
        if text is None:
            with pytest.raises(DamagedObject):
                list(_object_chunks("k.jsonl.gz", source, size))
        else:
            got = [bytes(c) for c in _object_chunks("k.jsonl.gz", source, size)]
            assert got == [bytes(c) for c in _chunks(text, size)]


def test_a_gzipped_object_is_not_unpacked_whole() -> None:
    """Its text comes out a piece at a time: the first chunks are read before the end of the
    data is (its CRC, here wrong, is met only at the end), and a 64 MiB text is never held."""
    line = b'{"captureData": {}}\n'
    packed = gzip.compress(line * (64 * 2**20 // len(line)), mtime=0)  # ~64 MiB of text
    chunks = _object_chunks("k.jsonl.gz", packed[:-8] + bytes(8), 1 << 20)
    first = [next(chunks) for _ in range(10)]
    assert all(1 << 20 <= len(c) < GUNZIP_PIECE + (1 << 20) + len(line) for c in first)
    with pytest.raises(DamagedObject, match="CRC check failed"):
        list(chunks)


def test_damage_found_part_way_through_a_gzipped_object_drops_all_its_rows() -> None:
    """The object is unpacked as it is read, so its damage can come after rows were read: the
    outcome is still one bad object and no rows, as the record reader gives."""
    body = lines([record(i, f"{i},1,x") for i in range(3000)])
    packed = gzip.compress(body, mtime=0)
    data = packed[:-8] + bytes(8)  # the CRC and length wrong: found only at the end
    for source in (data, pieces(data, 1000)):
        prof, read, stats, columns = profile_capture_columns(
            "ep/v/k.jsonl.gz", source, WINDOW, PayloadParser(NAMES), BASELINE, chunk_bytes=4096
        )
        assert prof is None and columns == []
        assert (read.objects, read.bad_objects, read.bad_keys, read.records) == (
            1, 1, ["ep/v/k.jsonl.gz"], 0,
        )  # fmt: skip
        assert (stats.records, stats.rows) == (0, 0)
    same(data)
