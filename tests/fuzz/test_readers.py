"""Dataset files (batch jobs, baselines) are untrusted bytes: read_chunks yields or raises DataError."""

from __future__ import annotations

import gzip
import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.errors import DataError
from analyzer.readers import ReadOptions, read_chunks
from tests.fuzz.strategies import FUZZ, JSON, TEXT

NAMES = ["x.csv", "x.csv.gz", "x.jsonl", "x.jsonl.gz", "x.parquet", "x.bin"]
OPTIONS = [
    ReadOptions(block_bytes=64),
    ReadOptions(header=False, block_bytes=4096),
    ReadOptions(delimiter=";", null_values=("", "NA")),
    ReadOptions(column_names=("a", "b")),
]


def read(data: bytes, name: str, options: ReadOptions) -> None:
    try:
        for chunk in read_chunks(data, name, options):
            assert isinstance(chunk.batch, pa.RecordBatch | pa.Table)
            assert chunk.bytes_done >= 0
    except DataError:
        pass


def _parquet() -> bytes:
    buf = io.BytesIO()
    table = pa.table({"a": [1, 2, None], "b": ["x", "y", "z"], "c": [0.5, None, 2.0]})
    pq.write_table(table, buf, row_group_size=2)
    return buf.getvalue()


PARQUET = _parquet()


@st.composite
def damaged_parquet(draw: st.DrawFn) -> bytes:
    """A valid Parquet file with a few bytes overwritten (past the magic, to reach the decoder)."""
    data = bytearray(PARQUET)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def text_files(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.lists(TEXT, max_size=4), max_size=8))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    data = "\n".join(sep.join(r) for r in rows).encode()
    return data


JSONL = st.lists(JSON, max_size=8).map(lambda docs: b"\n".join(orjson.dumps(d) for d in docs))


@FUZZ
@given(
    st.binary(max_size=2000) | text_files() | JSONL | damaged_parquet(),
    st.sampled_from(NAMES),
    st.sampled_from(OPTIONS),
    st.booleans(),
)
@example(b"not gzip at all", "x.csv.gz", OPTIONS[0], False)
@example(b"a\rb,c\n1,2\n", "x.csv", OPTIONS[0], False)  # atheris: csv.Error in the header
@example(b"\n null \n{}\n", "x.jsonl", OPTIONS[0], False)  # atheris: pyarrow 26 SIGSEGV
@example(b"null\nnull\n", "x.jsonl", OPTIONS[1], False)
@example(b'null: 1, "": "x"}\n{"a": 1}\n', "x.jsonl", OPTIONS[0], False)
@example(b"\x02" + b"\x00" * 40, "x.parquet", OPTIONS[0], False)
@example(b"a,b\n1,\x002\n", "x.csv", OPTIONS[0], False)
@example(b'{"a": 1}\n{"a": "x"}\n{"a": [1]}\n', "x.jsonl", OPTIONS[0], False)
@example(PARQUET[:-9] + b"\x00" * 9, "x.parquet", OPTIONS[0], False)
def test_any_bytes_read_or_raise_data_error(
    data: bytes, name: str, options: ReadOptions, gz: bool
) -> None:
    if gz and name.endswith(".gz"):
        data = gzip.compress(data)
    read(data, name, options)
