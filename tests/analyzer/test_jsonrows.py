"""The JSON row reader (``analyzer/_jsonrows.c`` via :mod:`analyzer.jsonrows`) gives the table
today's Python path gives (orjson rows, ``PayloadParser._json``), with the same types and values
bit for bit, and the same parse counts; what it does not read, it leaves to that path.

Where the reader is not built (the pure-Python checkout) ``rows_table`` is None and the same
tests check the Python path against itself; ``make pytest-compiled`` runs them on the C reader."""

from __future__ import annotations

import gc
import os
import runpy
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pajson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import analyzer.capture_columns as capture_columns
from analyzer import jsonrows
from analyzer.capture_columns import _SCHEMA, parse_side
from analyzer.capture_payload import INPUT, OUTPUT
from analyzer.capture_template import valid_utf8
from analyzer.payloads import ParseStats, PayloadParser
from tests.fuzz.strategies import JSON, records

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["a", "b", "c"]


def test_built_where_expected() -> None:
    # `make pytest-compiled` sets MODELTAP_EXPECT_COMPILED=1 in its compiled copy of the tree.
    assert jsonrows.compiled == (os.environ.get("MODELTAP_EXPECT_COMPILED") == "1")


def test_powers_of_ten_header_is_the_generated_one() -> None:
    gen = runpy.run_path(str(ROOT / "ci" / "gen_jsonrows_pow10.py"))
    assert (ROOT / "analyzer" / "_jsonrows_pow10.h").read_text() == gen["header"]()


def side(texts: list[str]) -> pa.StructArray:
    n = len(texts)
    return pa.StructArray.from_arrays(
        [pa.array(texts, pa.string()), pa.array(["JSON"] * n), pa.array(["application/json"] * n)],
        names=["data", "encoding", "observedContentType"],
    )


def python_path(texts: list[str], where: str = INPUT) -> tuple[pa.Table, ParseStats]:
    stats = ParseStats()
    real = capture_columns.rows_table
    capture_columns.rows_table = lambda *a: None  # type: ignore[assignment]
    try:
        table = parse_side(PayloadParser(NAMES, where), side(texts), stats)
    finally:
        capture_columns.rows_table = real
    return table, stats


def assert_same(texts: list[str], *, read: bool = False, where: str = INPUT) -> pa.Table:
    """parse_side with the reader == without it; ``read``: the reader took them (if built)."""
    key = "predictions" if where == OUTPUT else "instances"
    direct = jsonrows.rows_table(pa.array(texts, pa.string()), key, PayloadParser(NAMES)._name)
    if read and jsonrows.compiled:
        assert direct is not None, texts
    stats = ParseStats()
    table = parse_side(PayloadParser(NAMES, where), side(texts), stats)
    old, old_stats = python_path(texts, where)
    assert stats == old_stats
    assert table.schema == old.schema
    assert table.num_rows == old.num_rows
    for new_col, old_col in zip(table.columns, old.columns, strict=True):
        assert same_values(new_col.combine_chunks(), old_col.combine_chunks())
    return table


def same_values(a: pa.Array, b: pa.Array) -> bool:
    """Equal values and nulls; floats compared by their bits (-0.0 is not 0.0)."""
    if a.to_pylist() != b.to_pylist() or a.null_count != b.null_count:
        return False
    if pa.types.is_floating(a.type):
        bits = [struct.pack("<d", v) if v is not None else None for v in a.to_pylist()]
        return bits == [struct.pack("<d", v) if v is not None else None for v in b.to_pylist()]
    return True


# --------------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    "texts",
    [
        ['{"instances":[[1,2.5,"x"]]}', '{"instances":[[3,4,"y"]]}'],  # the sidecar's form
        ['{"instances": [[1, 2.5, "x"], [3, 4, null]]}'],  # several rows, spaces
        ["[[1, true], [2, false]]", "[3, null]"],  # a list of rows; one row
        ['{"instances":[[]]}', '{"instances":[[]]}'],  # rows of no values: nulls
        ['{"instances":[[1]]}', '{"instances":[[]]}', '{"instances":[[1,2,3]]}'],  # ragged
        ['{"instances":[1, 2, [3, 4]]}'],  # scalars are rows of one value
        ['{"instances":[]}', '{"instances":[[null, null]]}'],  # no rows; a null-only column
        ['{"instances":[[-0, -0.0, 0e5, -0e-5, 1E2, 1e-7, 123456789012345678.5]]}'] * 2,
        ['{"instances":[[9223372036854775807, -9223372036854775808, 9007199254740993]]}'],
        ['{"instances":[[9007199254740992, 0.5]]}', '{"instances":[[2, 1.5]]}'],  # int/float
        [
            '{"instances":[["\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/\\b\\f\\r\\t\\u0000", "caf\u00e9 \U0001f600"]]}'
        ],
        ['{"instances":[[0.30000000000000004, 2.2250738585072014e-308, 1.7976931348623157e308]]}'],
        ['{"instances":[[4.9406564584124654e-324]]}'],  # subnormal: left to the Python path
        ['{"instances":[["' + 'ab\\u00e9\\"' * 30_000 + '", "' + "x" * 100_001 + '"]]}'] * 3,
    ],
)
def test_reads_what_the_python_path_reads(texts: list[str]) -> None:
    assert_same(texts, read="e-324" not in texts[0])


@pytest.mark.parametrize(
    "texts",
    [
        ['{"instances":[[1, "a"]]}', '{"instances":[[2.5, 3]]}'],  # int and str: text
        ['{"instances":[[true]]}', '{"instances":[[1]]}'],  # bool and int: text
        ['{"instances":[[9007199254740993]]}', '{"instances":[[0.5]]}'],  # no exact double
        ['{"instances":[[18446744073709551615]]}'],  # uint64 in orjson
        ['{"instances":[[-9223372036854775809]]}'],  # a float in orjson
        ['{"instances":[[[1, 2], 3]]}'],  # nested
        ['{"instances":[[{"a": 1}]]}'],
        ['{"instances":[{"a": 1}]}'],  # named rows
        ['{"instances":[[1]], "x": 2}', '{"instances":[[1]]}'],  # another key
        ['{"inputs":[[1]]}'],
        ['{"instances":[[1e400]]}', '{"instances":[[1]]}'],  # not JSON for orjson: bad_json
        ['{"instances":[[1e-400]]}'],  # underflow
        ['{"instances":[[NaN]]}', '{"instances":[[Infinity]]}'],
        ['{"instances":[["\\ud800"]]}', '{"instances":[["a"]]}'],  # lone surrogates
        ['{"instances":[["a"]]}', '{"instances":[["\\udc00"]]}'],
        ['{"instances":[["\\ud800\\u0041"]]}'],
        [
            '{"instances":[[1,]]}',
            '{"instances":[[01]]}',
            '{"instances":[[.5]]}',
            '{"instances":[[1.]]}',
        ],
        ['{"instances":[["a\tb"]]}', '{"instances":[["\x1f"]]}'],  # raw control characters
        ['{"instances":[[1]]} x', "", "  ", "3", '"s"', "null", '{"instances": 3}'],
        ['{"instances":[[1]]}', '{"instances":[[2]]'],  # cut short
        ['{"instan\\u0063es":[[1]]}'],
    ],
)
def test_leaves_the_rest_to_the_python_path(texts: list[str]) -> None:
    assert_same(texts)


def test_output_side_predictions() -> None:
    assert_same(['{"predictions": [0.5]}', '{"predictions": [0.25, 1]}'], read=True, where=OUTPUT)
    assert_same(['{"predictions": [[0.5, 1]]}', "[[1, 2]]"], read=True, where=OUTPUT)


def test_wider_rows_than_names_get_positional_names() -> None:
    table = assert_same(['{"instances":[[1,2,3,4,5]]}'], read=True)
    assert table.column_names == ["a", "b", "c", "_c3", "_c4"]


def test_a_sliced_array_reads_its_own_payloads() -> None:
    texts = pa.array(['{"instances":[[1]]}', '{"instances":[[2]]}', '{"instances":[[3]]}'])
    name = PayloadParser(NAMES)._name
    got = jsonrows.rows_table(texts.slice(1, 2), "instances", name)
    if jsonrows.compiled:
        assert got is not None
        assert got.column("a").to_pylist() == [2, 3]


def test_ill_formed_utf8_is_left_to_the_python_path() -> None:
    # Arrow strings from the capture readers were checked; an unchecked buffer is refused too.
    for bad in (b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        text = b'{"instances":[["a' + bad + b'"]]}'
        offsets = pa.py_buffer(np.array([0, len(text)], dtype=np.int32).tobytes())
        arr = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(text)])
        assert jsonrows.rows_table(arr, "instances", PayloadParser(NAMES)._name) is None


# --------------------------------------------------------------------------------- properties

INT = st.integers(-(2**70), 2**70).map(str)
DECIMAL = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z")
FLOAT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17g}"),
    st.tuples(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 20)).map(
        lambda t: f"{t[0]:.{t[1]}e}"
    ),
    DECIMAL,
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=8) | st.text(
    'ab"\\\n\u00e9', min_size=10, max_size=60
)


@st.composite
def json_string(draw: Any) -> str:
    """A JSON string literal, escaped several ways (\\u escapes, surrogate pairs, lone ones)."""
    text = draw(TEXT)
    out = []
    for ch in text:
        how = draw(st.integers(0, 3))
        cp = ord(ch)
        if how == 0 and ch not in '"\\' and cp >= 0x20:
            out.append(ch)
        elif how == 1 or cp < 0x20 or ch in '"\\':
            out.append(orjson.dumps(ch).decode()[1:-1])
        elif cp < 0x10000:
            out.append(f"\\u{cp:04x}" if draw(st.booleans()) else f"\\u{cp:04X}")
        else:
            hi, lo = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
            out.append(f"\\u{hi:04x}\\u{lo:04x}")
    if draw(st.integers(0, 15)) == 0:  # now and then a lone surrogate: orjson refuses it
        out.append(draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d\\u0041"])))
    if draw(st.integers(0, 30)) == 0:  # or a raw control character
        out.append(chr(draw(st.one_of(st.sampled_from([0x00, 0x1F]), st.integers(0, 0x1F)))))
    return '"' + "".join(out) + '"'


SCALAR = st.one_of(INT, FLOAT, json_string(), st.sampled_from(["true", "false", "null"]))
KINDS = {
    "int": INT.filter(lambda s: abs(int(s)) < 2**63),
    "float": FLOAT,
    "str": json_string(),
    "bool": st.sampled_from(["true", "false"]),
    "num": st.one_of(st.integers(-(2**53), 2**53).map(str), FLOAT),
    "null": st.just("null"),
}
WS = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n"])


@st.composite
def payloads(draw: Any, value: Any, width: Any) -> list[str]:
    """Payload texts of rows of ``value``s, in the shapes the reader takes."""
    texts = []
    for _ in range(draw(st.integers(1, 6))):
        rows = [
            [draw(value(j)) for j in range(draw(width))] for _ in range(draw(st.integers(0, 3)))
        ]
        ws = draw(WS)
        body = [f"[{ws}" + f"{ws},{ws}".join(r) + f"{ws}]" for r in rows]
        shape = draw(st.integers(0, 3))
        if shape == 0 or not rows:
            texts.append(
                f'{ws}{{{ws}"instances"{ws}:{ws}[{ws}' + ",".join(body) + f"{ws}]{ws}}}{ws}"
            )
        elif shape == 1:
            texts.append('{"instances":[' + ",".join(body) + "]}")
        elif shape == 2:
            texts.append(f"[{ws}" + ",".join(body) + f"{ws}]")
        else:
            texts.append(body[0])  # one row, the bare list
    return texts


@given(st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_typed_columns_read_alike(data: Any) -> None:
    """Columns of one kind each (nulls anywhere): the reader takes them unless a number or a
    string is one it leaves to Python (checked above); the same table, bit for bit."""
    kinds = data.draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5))

    def value(j: int) -> Any:
        kind = kinds[j % len(kinds)]
        return st.one_of(KINDS[kind], st.just("null")) if kind != "null" else KINDS[kind]

    texts = data.draw(payloads(value, st.integers(0, len(kinds))))
    assert_same(texts)


@given(st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_anything_reads_alike(data: Any) -> None:
    """Any scalars in any column, ragged rows, and payload texts broken anywhere."""
    texts = data.draw(payloads(lambda j: SCALAR, st.integers(0, 4)))
    if data.draw(st.integers(0, 3)) == 0:
        i = data.draw(st.integers(0, len(texts) - 1))
        t = texts[i]
        at = data.draw(st.integers(0, len(t)))
        texts[i] = (
            t[:at]
            + data.draw(st.sampled_from(["", "x", ",", "]", "[", '"', "\\", "{"]))
            + t[at + 1 :]
        )
    assert_same(texts)


@given(st.lists(FLOAT, min_size=1, max_size=60))
@settings(max_examples=400)
@example(["0.1", "2.2250738585072011e-308", "9007199254740993.0", "1e23", "8.98846567431158e307"])
@example(["7.2057594037927933e16", "1.0000000000000001", "3.0540412964158e-2"])
def test_float_literals_correctly_rounded(lits: list[str]) -> None:
    """A column of float literals: each value is orjson's (correctly rounded) double, bit for
    bit, or the reader left the chunk to Python (overflow, underflow)."""
    texts = ['{"instances":[[' + lit + "]]}" for lit in lits]
    got = jsonrows.rows_table(pa.array(texts), "instances", PayloadParser(NAMES)._name)
    if got is None:
        return
    expect = [orjson.loads(lit) for lit in lits]
    column = got.column("a").combine_chunks()
    if pa.types.is_integer(column.type):  # integer literals only
        assert column.to_pylist() == expect
        return
    values = column.to_numpy(zero_copy_only=False).view(np.int64).tolist()
    assert values == np.array(expect, dtype=np.float64).view(np.int64).tolist()


# --------------------------------------------------------------------------------- envelopes


def arrow_envelopes(chunk: bytes) -> pa.Table | None:
    try:
        return pajson.read_json(
            pa.BufferReader(pa.py_buffer(chunk)),
            read_options=pajson.ReadOptions(use_threads=False),
            parse_options=pajson.ParseOptions(
                explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"
            ),
        ).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def leaves(table: pa.Table) -> list[pa.Array]:
    """Every struct and leaf array as stored (``field`` keeps a child's own validity)."""
    out: list[pa.Array] = []

    def walk(arr: pa.Array) -> None:
        out.append(arr)
        if pa.types.is_struct(arr.type):
            for i in range(arr.type.num_fields):
                walk(arr.field(i))

    for column in table.columns:
        walk(column.combine_chunks())
    return out


def assert_same_envelopes(chunk: bytes, *, read: bool = False) -> None:
    """envelope_table gives Arrow's table, or leaves the chunk to Arrow (None)."""
    if not capture_columns._lines_are_objects(chunk) or not valid_utf8(pa.py_buffer(chunk)):
        return  # such chunks never reach either reader
    got = jsonrows.envelope_table(chunk, _SCHEMA)
    if read and jsonrows.compiled:
        assert got is not None
    if got is None:
        return
    expect = arrow_envelopes(chunk)
    assert expect is not None, chunk  # Arrow's reader refuses what was read
    assert got.schema == expect.schema
    for a, b in zip(leaves(got), leaves(expect), strict=True):
        assert a.to_pylist() == b.to_pylist()
        assert a.is_valid().to_pylist() == b.is_valid().to_pylist()


def capture_line(i: int, data: str, when: str = "2024-01-01T00:00:00Z") -> bytes:
    return orjson.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "application/json",
                    "mode": "INPUT",
                    "data": data,
                    "encoding": "JSON",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": '{"predictions": [0.5]}',
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": f"e{i}", "inferenceTime": when},
            "eventVersion": "0",
        }
    )


SIDECAR = b"\n".join(capture_line(i, f'{{"instances":[[{i},{i / 7},"c\\u00e9{i}"]]}}')
                     for i in range(20)) + b"\n"  # fmt: skip


@pytest.mark.parametrize(
    "chunk",
    [
        SIDECAR,
        SIDECAR.rstrip(b"\n"),  # no line end at the end
        b'{"captureData":null,"eventMetadata":{"inferenceTime":null},"modeltap":{"targetModel":"m"}}\n'
        b'{"captureData":{},"modeltap":null}\n{}\n'
        b'{"captureData":{"endpointInput":null,"endpointOutput":{"data":"x"}},"x":[1,{"a":[]}]}\n',
        b'{"x":{"captureData":{"endpointInput":{"data":5}}},"captureData":{"endpointInput":{"data":"\\u00e9\\ud83d\\ude00\\"\\/"}}}\n',
        b'{ "captureData" : { "endpointInput" : { "data" : "1" , "encoding" : "CSV" } } }\n',
    ],
)
def test_envelopes_read_as_arrow_reads_them(chunk: bytes) -> None:
    assert_same_envelopes(chunk, read=True)


@pytest.mark.parametrize(
    "chunk",
    [
        SIDECAR + b"\n" + SIDECAR,  # an empty line
        SIDECAR.replace(b'"captureData"', b'"captur\\u0065Data"', 1),  # an escaped key
        SIDECAR.replace(b'"eventVersion":"0"', b'"eventVersion":"0","eventMetadata":{}', 1),
        SIDECAR.replace(b'"eventVersion":"0"', b'"eventVersion":1e400', 1),
        SIDECAR.replace(b'"encoding":"JSON"', b'"encoding":5', 1),  # another type
        SIDECAR.replace(b'"eventMetadata":{', b'"eventMetadata":[{', 1),
        SIDECAR.replace(b'"eventId":"e3"', b'"eventId":"\\ud800"', 1),
        SIDECAR.replace(b'"eventId":"e3"', b'"eventId":tru', 1),
        SIDECAR + b"[1]\n",  # not an object
        b" " + SIDECAR,
        SIDECAR.replace(b'"eventId":"e3"', b'"eventId":"e\x013"', 1),  # a raw control character
        SIDECAR.replace(b'"eventVersion":"0"}', b'"eventVersion":"0"} x', 1),
        SIDECAR.replace(b'"eventVersion":"0"}', b'"eventVersion":"0"}\r', 1),
        SIDECAR.replace(
            b'"eventVersion":"0"}',
            b'"eventVersion":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}',
            1,
        ),
    ],
)
def test_envelopes_left_to_arrow(chunk: bytes) -> None:
    if jsonrows.compiled:
        assert jsonrows.envelope_table(chunk, _SCHEMA) is None
    assert_same_envelopes(chunk)


@given(st.lists(records() | JSON | st.sampled_from(SIDECAR.splitlines()), min_size=1, max_size=8),
       st.data())  # fmt: skip
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_any_envelopes_read_as_arrow_reads_them(recs: list[Any], data: Any) -> None:
    chunk = b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in recs) + b"\n"
    if data.draw(st.booleans()):  # a byte changed anywhere
        at = data.draw(st.integers(0, len(chunk) - 1))
        new = data.draw(st.sampled_from(b'{}[]",:\\ 0e-.tnu\x00\x7f\xc3'))
        chunk = chunk[:at] + bytes([new]) + chunk[at + 1 :]
    assert_same_envelopes(chunk)


def test_a_chunks_buffers_are_freed_without_the_garbage_collector() -> None:
    # A reference cycle would hold every chunk's buffers until the collector runs, which it
    # seldom does here (few Python objects are made): peak RSS grew by ~20 MiB per object.
    gc.collect()
    gc.disable()
    try:
        table = jsonrows.envelope_table(SIDECAR, _SCHEMA)
        texts = pa.array(['{"instances":[[1, "a"]]}'] * 10)
        rows = jsonrows.rows_table(texts, "instances", PayloadParser(NAMES)._name)
        del table, rows
        assert gc.collect() == 0
    finally:
        gc.enable()
