"""The fast paths of the columnar capture reader give what the record-by-record reader gives.

* Lines of one layout (the sidecar's) read by one CSV parse (:mod:`analyzer.capture_template`):
  the objects here are taken by it (asserted, so the comparison is of that path), and every
  line that leaves the layout (a key, a quote, an escape, a space, a scalar's kind, a width,
  bad UTF-8, an empty line) must give the record reader's result all the same.
* JSON payloads of one row each parsed together (``_one_row_payloads``).
* An object's chunks profiled in batches: the counts of chunk-by-chunk profiling.
* ``inferenceTime`` read from its bytes: the values of the regex, strptime and parse_time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer import capture_columns, numparse
from analyzer.capture_columns import profile_capture_columns
from analyzer.capture_template import canonical_chunk
from analyzer.payloads import PayloadParser
from analyzer.profile import Profile
from tests.analyzer.test_capture_columns import BASELINE, NAMES, WINDOW, lines, record, same
from tests.fuzz.strategies import FUZZ

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sidecar(i: int, data: str, *, latency: float = 1.5, status: int = 200,
            when: str = "2024-01-01T00:10:00Z", model: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A record as the sidecar writes it (modeltap.core.record.encode_record's keys)."""
    extra: dict[str, Any] = {"status": status, "modelLatencyMs": latency, "method": "POST",
                             "path": "/invocations"}  # fmt: skip
    if model is not None:
        extra["targetModel"] = model
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": data,
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv",
                "mode": "OUTPUT",
                "data": "0.5",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": f"e-{i:06x}", "inferenceTime": when},
        "eventVersion": "0",
        "modeltap": extra,
    }


CANONICAL = [
    sidecar(i, f"{i},{i / 7},c{i % 5}", latency=i * 0.37, status=200 + i % 3, model="m")
    for i in range(40)
]


def taken(data: bytes) -> bool:
    return canonical_chunk(data, PayloadParser(NAMES)) is not None


def test_sidecar_lines_take_the_fast_path_and_read_alike() -> None:
    data = lines(CANONICAL)
    assert taken(data)
    same(data)
    assert taken(data.rstrip(b"\n"))  # the last line without its newline
    same(data.rstrip(b"\n"))


@pytest.mark.parametrize(
    "payload",
    [
        "NA,1,x",  # Arrow's null values at the payload's ends
        "1,2,",
        ",,",
        "null,nan,N/A",
        "é,ü,日本",  # non-ASCII
        "1,2,3,4",  # wider than the baseline
        "7",  # one column
    ],
)
def test_payload_ends_and_widths(payload: str) -> None:
    data = lines([sidecar(i, payload) for i in range(5)])
    assert taken(data)
    same(data)


def _bytes_line(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec)


def like(data: str, **kw: Any) -> dict[str, Any]:
    """A record of CANONICAL's layout (what is changed in it is all that differs)."""
    return sidecar(90, data, model="m", **kw)


OTHERS: list[Any] = [
    like("1,2,3", when="2024-01-01T03:00:00Z"),  # outside the window
    like("1,2,3", when="2024-01-01T00:10:00.5Z"),  # fractional seconds
    like("1,2,3", when="yesterday"),  # a bad time
    like("1,2"),  # narrower: another width
    like(""),  # an empty payload
    like("1,2\n"),  # an escape
    like('1,"2",3'),  # quotes in the payload (escaped)
    like("1,2,3", latency=2),  # an integer where a float was: still a number
    like("1,2,3", status=-1),
    record(90, "1,2,3"),  # another layout
    record(90, orjson.dumps({"instances": [[1, 2, "c"]]}).decode(), "JSON"),
    {
        **like("1,2,3"),
        "eventMetadata": {"eventId": 5, "inferenceTime": "2024-01-01T00:10:00Z"},
    },
    {
        **like("1,2,3"),
        "eventMetadata": {"eventId": "a,b", "inferenceTime": "2024-01-01T00:10:00Z"},
    },
    {
        **like("1,2,3"),
        "eventMetadata": {"eventId": 'a"b', "inferenceTime": "2024-01-01T00:10:00Z"},
    },
    _bytes_line(like("1,2,3")).replace(b'"endpointInput"', b'"endpointInpuX"'),
    _bytes_line(like("1,2,3")).replace(b'"encoding":"CSV"', b'"encoding":"JSN"', 1),
    _bytes_line(like("1,2,3")).replace(b'"encoding":"CSV"', b'"encoding":"TXT"', 1),
    _bytes_line(like("1,2,3")).replace(b'"data":"1,2,3"', b'"data":"1","x":"2,3"'),
    _bytes_line(like("1,2,3")).replace(b'"data":"1,2,3"', b'"data":"1,2","3"'),
    _bytes_line(like("1,2,3")).replace(b'"data":"1,2,3"', b'"data":"1,2,3" '),
    _bytes_line(like("1,2,3")).replace(b'"eventVersion":"0"', b'"eventVersion":0'),
    _bytes_line(like("1,2,3")).replace(b'"status":200', b'"status":"200"'),
    _bytes_line(like("1,2,3")).replace(b'"status":200', b'"status":2e'),
    _bytes_line(like("1,2,3")).replace(b'"status":200', b'"status":true'),
    _bytes_line(like("1,2,3")).replace(b'"status":200', b'"status":nul'),
    _bytes_line(like("1,2,3")).replace(b'"e-00005a"', b'"e-\xff"'),  # not UTF-8
    _bytes_line(like("1,2,3")).replace(b'"1,2,3"', b'"1,\xff,3"'),  # a payload not UTF-8
    _bytes_line(like("1,2,3")).replace(b'"e-00005a"', b'"e-\x01"'),  # a control character
    _bytes_line(like("1,2,3")).replace(b'"e-00005a"', b'"e-\\u0041"'),
    _bytes_line(like("1,2,3")).replace(b'"/invocations"', b'"/invocations\x1f"'),  # near the end
    like("1,2\t,3"),  # an escape in the payload (JSON's \t), the width unchanged
    like("1,2\\,3"),
    _bytes_line(like("1,2,3"))[:-1],  # cut short
    _bytes_line(like("1,2,3")) + b"}",
    _bytes_line(like("1,2,3")).replace(b"{", b"[", 1),
    b"",  # an empty line
    b"null",
]


@pytest.mark.parametrize("other", range(len(OTHERS)))
def test_a_line_off_the_layout_reads_alike(other: int) -> None:
    recs = [*CANONICAL[:20], OTHERS[other], *CANONICAL[20:]]
    same(lines(recs))
    same(lines([OTHERS[other], *CANONICAL]))  # as the first line: another layout for the chunk
    same(lines([*CANONICAL, OTHERS[other]]))  # as the last: its last bytes are read one by one


def test_first_line_layouts_the_fast_path_leaves_alone() -> None:
    dup = _bytes_line(CANONICAL[0]).replace(b'"method":"POST"', b'"status":201')
    spaced = orjson.dumps(CANONICAL[0], option=orjson.OPT_INDENT_2).replace(b"\n", b"")
    scalar = _bytes_line({**CANONICAL[0], "eventMetadata": {"inferenceTime": "2024-01-01T00:10:00Z",
                                                            "eventId": 7}})  # fmt: skip
    for first in (dup, spaced, scalar):
        data = first + b"\n" + lines(CANONICAL[1:])
        assert not taken(data)
        same(data)


def test_target_model_and_outputs_take_the_general_reader() -> None:
    data = lines(CANONICAL)
    same(data, target_model="m")
    same(data, outputs=PayloadParser(["p"], side="endpointOutput"))


_CELL = st.text(
    st.characters(codec="utf-8", exclude_characters=',"\\', exclude_categories=["Cc"]),
    max_size=6,
) | st.sampled_from(
    [
        "",
        "NA",
        "null",
        "1",
        "-2.5",
        "1e3",
        " 7",
        "nan",
        "inf",
        "-0",
        "1.",
        ".5",
        "+1",
        "1E5",
        "-nan",
        "0x10",
        "007",
        "18446744073709551616",
        "1e400",
        "2 ",
    ]
)
_ID = st.text(st.characters(codec="utf-8", exclude_characters=',"\\', exclude_categories=["Cc"]),
              max_size=8)  # fmt: skip


@FUZZ
@given(
    st.lists(st.tuples(st.lists(_CELL, min_size=1, max_size=4), _ID,
                       st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 10**6),
                       st.sampled_from(["2024-01-01T00:10:00Z", "2024-01-01T00:59:59Z",
                                        "2024-01-01T01:00:00Z", "2023-12-31T23:59:59Z"])),
             min_size=1, max_size=12),
    st.data(),
)  # fmt: skip
def test_random_sidecar_objects_read_alike(rows: list[Any], data: st.DataObject) -> None:
    width = len(rows[0][0])
    recs = []
    for i, (cells, event, latency, when) in enumerate(rows):
        rec = sidecar(i, ",".join((cells * width)[:width]), latency=latency, when=when)
        rec["eventMetadata"]["eventId"] = event
        recs.append(rec)
    text = lines(recs)
    if all(rec["captureData"]["endpointInput"]["data"] for rec in recs):  # "" counts as empty
        assert taken(text)
    same(text)
    # one byte changed, inserted or dropped anywhere: whichever reader takes it, the same result
    at = data.draw(st.integers(0, len(text) - 1))
    byte = data.draw(st.sampled_from([*b'",\\{}[]:0a \n', 0xC3, 0xFF]))
    how = data.draw(st.sampled_from(["set", "insert", "drop"]))
    mutated = {
        "set": text[:at] + bytes([byte]) + text[at + 1 :],
        "insert": text[:at] + bytes([byte]) + text[at:],
        "drop": text[:at] + text[at + 1 :],
    }[how]
    same(mutated)


def _arrow_read(text: bytes) -> tuple[pa.Array, pa.Table] | None:
    """canonical_chunk with Arrow's CSV reader, as the pure-Python build reads."""
    was, numparse.compiled = numparse.compiled, False
    try:
        return canonical_chunk(text, PayloadParser(NAMES))
    finally:
        numparse.compiled = was


@FUZZ
@given(
    st.lists(st.tuples(st.lists(_CELL, min_size=1, max_size=4),
                       _ID | st.sampled_from(["a,,b", ",", "a,b", "NA", ""]),
                       st.sampled_from(["2024-01-01T00:10:00Z", "", "NA", "null", "x"])),
             min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
    st.data(),
)  # fmt: skip
def test_the_compiled_split_gives_the_csv_readers_columns(
    rows: list[Any], widths: bool, last_newline: bool, data: st.DataObject
) -> None:
    # The compiled build cuts the lines at commas in C: the same times and payload columns as
    # Arrow's CSV reader (nulls included), and None for the same chunks, mutated ones too.
    if not numparse.compiled:
        pytest.skip("analyzer._numparse is not built (make compiled)")
    width = len(rows[0][0])
    recs = []
    for i, (cells, event, when) in enumerate(rows):
        rec = sidecar(i, ",".join(cells if widths else (cells * width)[:width]), when=when)
        rec["eventMetadata"]["eventId"] = event
        recs.append(rec)
    text = lines(recs)
    if not last_newline:
        text = text[:-1]
    at = data.draw(st.integers(0, len(text) - 1))
    byte = data.draw(st.sampled_from([*b',\n0a"', 0xC3]))
    how = data.draw(st.sampled_from(["none", "set", "insert", "drop"]))
    text = {
        "none": text,
        "set": text[:at] + bytes([byte]) + text[at + 1 :],
        "insert": text[:at] + bytes([byte]) + text[at:],
        "drop": text[:at] + text[at + 1 :],
    }[how]
    want, got = _arrow_read(text), canonical_chunk(text, PayloadParser(NAMES))
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got[0].equals(want[0])
        assert got[1].equals(want[1])


# --- JSON payloads of one row each ------------------------------------------------------------


def _json(i: int, data: str) -> dict[str, Any]:
    return record(i, data, "JSON")


@pytest.mark.parametrize(
    "payloads",
    [
        ['{"instances":[[1,2.5,"a"]]}'] * 5,
        ['{"instances":[[1,2.5,"a"]]}', '{"instances":[[1],[2]]}'],  # two rows
        ['{"instances":[["a]]}', '{"instances":[[b"]]}'],  # a string across the separator
        ['{"instances":[["a]"]]}', '{"instances":[[1,2,3]]}'],  # a bracket in a string
        ['{"instances":[[1]],"x":[[2]]}', '{"instances":[[3]]}'],
        ['{"instances":[[1]],"instances":[[2]]}'],  # a duplicate key
        ['{"instances":[[]]}', '{"instances":[[null,true,{"a":1}]]}'],
        ['{"instances":[[1,2,3]]}', '{"instances":[[1,2,3]] }'],  # another form: alone
        ['{"instances":[[1,2,3],]}'],
        ['{"instances":[[1e400]]}', '{"instances":[[18446744073709551616]]}'],
        ['{"instances":[[-0,1E3,-0.0,1e-400,9007199254740993]]}', '{"instances":[[1,2.5,3,4,5]]}'],
        ['{"instances":[[1, 2]]}', '{"instances":[[NaN,2]]}', '{"instances":[["a,b",2]]}'],
    ],
)
def test_json_rows_read_alike(payloads: list[str]) -> None:
    same(lines([_json(i, p) for i, p in enumerate(payloads)]))


@FUZZ
@given(st.lists(st.lists(st.integers(-3, 3) | st.floats(-2, 2) | st.sampled_from(
    ["a", "b]", "[c", "", None, True]), min_size=1, max_size=3), min_size=1, max_size=8))  # fmt: skip
def test_random_json_rows_read_alike(rows: list[list[Any]]) -> None:
    same(
        lines([_json(i, orjson.dumps({"instances": [row]}).decode()) for i, row in enumerate(rows)])
    )


# --- batches of chunks -------------------------------------------------------------------------


def _counts(prof: Profile | None) -> Any:
    assert prof is not None
    out = {"rows": prof.item_count}
    for name, col in prof.columns.items():
        strings = None if col.strings is None else col.strings.counts_dict()
        out[name] = (col.type_counts.tolist(), col.numeric.count, col.numeric.min,
                     col.numeric.max, strings)  # fmt: skip
    return out


def test_chunks_profiled_in_batches_count_every_row_once() -> None:
    recs = [record(i, f"{i},{i / 3},c{i % 4}") for i in range(60)]
    data = lines(recs)
    whole = profile_capture_columns("k.jsonl", data, WINDOW, PayloadParser(NAMES), BASELINE)
    for rows in (1, 3, 7, 10**6):
        found = profile_capture_columns("k.jsonl", data, WINDOW, PayloadParser(NAMES), BASELINE,
                                        chunk_bytes=300, batch_rows=rows)  # fmt: skip
        assert found[1:] == whole[1:]
        assert _counts(found[0]) == _counts(whole[0])


# --- inferenceTime read from its bytes ---------------------------------------------------------

TIMES = [
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
    "2024-01-00T00:00:00Z", "2024-04-31T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z",
    "2024-01-01 23:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2100-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z",
    "", "x" * 20, "2024-0a-01T00:00:00Z", "2024-01-01T00:00:00+", "\uff12024-01-01T00:00:00Z",
    "2024-01-01T23:59:60Z", "2024-06-31T00:00:00Z", "1900-02-29T00:00:00Z",
]  # fmt: skip


@FUZZ
@given(st.lists(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
                .map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")) | st.sampled_from(TIMES) | st.none(),
                max_size=30), st.integers(0, 3))  # fmt: skip
def test_times_read_from_bytes_as_by_the_general_rules(times: list[str | None], skip: int) -> None:
    arr = pa.array(["?"] * skip + times, pa.string()).slice(skip)  # an offset into the buffers
    fast = capture_columns._inference_us(arr)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(capture_columns, "_plain_us", lambda t: (
            np.full(len(t), capture_columns.NO_TIME, dtype=np.int64), np.zeros(len(t), bool)))  # fmt: skip
        general = capture_columns._inference_us(arr)
    assert fast.tolist() == general.tolist()


def test_an_empty_instance_is_a_row_of_nulls_alone_or_beside_others() -> None:
    """``{"instances":[[]]}`` is one instance with no values: a row of missing values, as the
    record reader reads it beside other rows. Alone in its chunk (or object) it gave no row."""
    empty = _json(1, '{"instances":[[]]}')
    for recs in ([_json(0, '{"instances":[[1,2.5,"a"]]}'), empty], [empty], [empty, empty]):
        data = lines(recs)
        same(data)  # per chunk of 64 bytes (one record each) the counts of the whole object
        _, _, stats, _ = profile_capture_columns("k.jsonl", data, WINDOW, PayloadParser(NAMES),
                                                 BASELINE, chunk_bytes=64)  # fmt: skip
        assert stats.rows == len(recs)
