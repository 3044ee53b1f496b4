"""Streaming readers: CSV, JSON Lines and Parquet files as Arrow record batches of bounded size.

(Over 400 lines on purpose: the three formats share the chunk type, the options and the error
messages that name file, line and column; most of the length is locating a bad line, which
Arrow does not report.)

Each reader takes one file (a local path or the bytes of a store object) and yields ``Chunk``s,
so memory depends on the chunk size, not on the file's length (a store object is downloaded whole
first; see ``analyzer.sources``). Nothing is coerced: CSV fields are read as text and classified
by ``analyzer.inference``; JSON and Parquet keep their own types, except that a JSON field mixing
numbers and strings is read as text like a CSV column (below).

* **CSV** (SageMaker's ``{"csv": {"header": bool}}``): ``pyarrow.csv.open_csv``, every column as
  text, empty fields (and ``null_values``) as missing. Without a header, columns are named
  ``_c0``, ``_c1``, ... as SageMaker (Spark) names them, unless names are given.
* **JSON Lines** (``{"json": {"lines": true}}``): the file is cut into blocks at line ends and each
  block parsed by ``pyarrow.json``; a key missing from a line is a missing value. A top-level
  field whose scalars mix JSON types (numbers and strings, or booleans with either) is read as
  text, each value as its own JSON text (``1`` -> ``"1"``, ``2.50`` -> ``"2.50"``, ``true`` ->
  ``"true"``, ``"abc"`` -> ``"abc"``, ``null`` -> missing), so it is classified value by value
  like a CSV column and the mixed-type threshold applies (``analyzer.inference``). Arrow cannot
  type such a field and will not read a number as a string, so the block's bytes are rewritten
  first: one Arrow regex replacement quotes the field's unquoted scalars (a key is ``"name":``
  after ``{`` or ``,``, which text inside a JSON string cannot be). Once a field is found mixed
  it is read as text for the rest of the file. A field holding nested values (objects, arrays)
  on some lines and scalars on others stays an error naming file, line and field.
* **Parquet** (``{"parquet": {}}``): ``ParquetFile.iter_batches`` without pre-buffering, so memory
  is bounded by one row group.

Errors name the file, the line and the column: a ragged CSV row, bytes that are not UTF-8, a JSON
line that does not parse. Arrow's multi-threaded CSV parser does not know row numbers, so after a
failure the file is re-read single-threaded up to the bad row to find its line.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from analyzer.errors import DataError

Format = Literal["csv", "jsonl", "parquet"]

_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class ReadOptions:
    """How input files are parsed (SageMaker's dataset_format, plus a few knobs)."""

    format: Format | None = None
    """csv, jsonl or parquet; None picks by file name (``.csv``, ``.jsonl``/``.json``, ``.parquet``)."""
    header: bool = True
    """CSV: the first line holds the column names."""
    delimiter: str = ","
    """CSV field delimiter."""
    column_names: tuple[str, ...] | None = None
    """CSV: names to use (without a header, instead of _c0, _c1, ...)."""
    null_values: tuple[str, ...] = ("",)
    """CSV: field values that mean missing."""
    block_bytes: int = 8 << 20
    """CSV/JSON Lines: bytes parsed at a time."""
    batch_rows: int = 1 << 16
    """Parquet: rows per batch."""


@dataclass(frozen=True, slots=True)
class Chunk:
    batch: pa.RecordBatch | pa.Table
    bytes_done: int  # bytes of this file consumed so far (approximate for Parquet)
    file_columns: tuple[str, ...] = ()  # every column of the file, also those not decoded


def format_of(name: str, options: ReadOptions) -> Format:
    """The format of a file: the option if given, else from its name (a .gz suffix is skipped)."""
    if options.format is not None:
        return options.format
    base = name.lower().removesuffix(".gz")
    for suffix, fmt in _SUFFIXES.items():
        if base.endswith(suffix):
            return fmt
    raise DataError(
        "cannot tell the format from the file name; pass --format csv|jsonl|parquet", file=name
    )


def _open(source: str | bytes, name: str) -> tuple[pa.NativeFile, pa.NativeFile]:
    """(stream to parse, raw file whose ``tell()`` is the progress in stored bytes)."""
    raw = pa.BufferReader(source) if isinstance(source, bytes) else pa.OSFile(source, "rb")
    if name.lower().endswith(".gz"):
        return pa.CompressedInputStream(raw, "gzip"), raw
    return raw, raw


def _stream(source: str | bytes, name: str) -> pa.NativeFile:
    return _open(source, name)[0]


def read_chunks(
    source: str | bytes, name: str, options: ReadOptions, columns: Sequence[str] | None = None
) -> Iterator[Chunk]:
    """Chunks of one file; ``source`` is a local path or the file's bytes, ``name`` is for errors.

    ``columns`` narrows what is decoded (Parquet, CSV) when only some columns are needed; the
    chunks may still hold other columns (JSON Lines).
    """
    fmt = format_of(name, options)
    try:
        if fmt == "csv":
            yield from _read_csv(source, name, options, columns)
        elif fmt == "jsonl":
            yield from _read_jsonl(source, name, options)
        else:
            yield from _read_parquet(source, name, options, columns)
    except OSError as exc:  # the file cannot be read, or a .gz file is not gzip data
        raise DataError(f"cannot read the file: {exc}", file=name) from exc
    except pa.ArrowException as exc:  # what the cases above do not name (e.g. NotImplemented)
        raise DataError(f"cannot read {fmt}: {type(exc).__name__}: {exc}", file=name) from exc


# ---- CSV -----------------------------------------------------------------------------------

_ROW = re.compile(r"Row #(\d+)")
_COLS = re.compile(r"Expected (\d+) columns, got (\d+)")
_CSV_COL = re.compile(r"In CSV column #(\d+)")


def _csv_names(source: str | bytes, name: str, options: ReadOptions) -> list[str] | None:
    with _stream(source, name) as f:
        head = f.read(1 << 20)
    if not head.strip():
        return None
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not valid UTF-8 text at byte {exc.start + 1} of the line", file=name, line=1
        ) from exc
    try:
        fields = next(csv.reader([text], delimiter=options.delimiter))
    except csv.Error as exc:  # e.g. a lone carriage return inside the first line
        raise DataError(f"cannot parse the first line: {exc}", file=name, line=1) from exc
    if options.column_names is not None:
        if len(options.column_names) != len(fields):
            raise DataError(
                f"{len(options.column_names)} column names given, the file has {len(fields)} fields",
                file=name,
                line=1,
            )
        names = list(options.column_names)
    elif options.header:
        names = [f.strip() for f in fields]
    else:
        names = [f"_c{i}" for i in range(len(fields))]
    seen: set[str] = set()
    for col in names:
        if not col:
            raise DataError("a column has an empty name in the header", file=name, line=1)
        if col in seen:
            raise DataError(
                "the column name appears twice in the header", file=name, line=1, column=col
            )
        seen.add(col)
    return names


def _csv_reader(
    stream: pa.NativeFile,
    options: ReadOptions,
    names: list[str],
    threads: bool,
    columns: Sequence[str] | None = None,
) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            use_threads=threads,
            block_size=options.block_bytes,
            column_names=names,
            skip_rows=1 if options.header else 0,
        ),
        parse_options=pacsv.ParseOptions(delimiter=options.delimiter),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            include_columns=[n for n in names if n in set(columns)]
            if columns is not None
            else None,
            null_values=list(options.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def _read_csv(
    source: str | bytes, name: str, options: ReadOptions, columns: Sequence[str] | None = None
) -> Iterator[Chunk]:
    names = _csv_names(source, name, options)
    if names is None:
        return
    stream, raw = _open(source, name)
    compressed = stream is not raw
    try:
        for i, batch in enumerate(
            _csv_reader(stream, options, names, threads=True, columns=columns)
        ):
            # The threaded reader reads ahead, so tell() runs early; each batch is one block.
            done = raw.tell() if compressed else min(raw.tell(), (i + 1) * options.block_bytes)
            yield Chunk(batch, done, tuple(names))
    except pa.ArrowInvalid as exc:
        raise _csv_error(source, name, options, names, exc) from exc


def _csv_error(
    source: str | bytes, name: str, options: ReadOptions, names: list[str], exc: Exception
) -> DataError:
    msg = str(exc)
    if not _ROW.search(msg):
        # The threaded parser does not number rows; find the row single-threaded.
        try:
            for _ in _csv_reader(_stream(source, name), options, names, threads=False):
                pass
        except pa.ArrowInvalid as again:
            msg = str(again)
    row = _ROW.search(msg)
    line = int(row.group(1)) if row else None
    cols = _COLS.search(msg)
    if cols:
        return DataError(
            f"ragged row: expected {cols.group(1)} fields like the header, got {cols.group(2)}",
            file=name,
            line=line,
        )
    if "UTF8" in msg or "UTF-8" in msg:
        col = _CSV_COL.search(msg)
        column = names[int(col.group(1))] if col and int(col.group(1)) < len(names) else None
        return DataError(
            "not valid UTF-8 text; re-encode the file as UTF-8", file=name, line=line, column=column
        )
    return DataError(f"cannot parse CSV: {msg}", file=name, line=line)


# ---- JSON Lines --------------------------------------------------------------------------------

_JSON_ROW = re.compile(r"in row (\d+)")
_JSON_COL = re.compile(r"Column\((/[^)]*)\)")
_JSON_CHANGED = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")


def _blocks(f: BinaryIO | pa.NativeFile, size: int) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines and the number of bytes read so far."""
    rest = b""
    done = 0
    while True:
        data = f.read(size)
        done += len(data)
        if not data:
            if rest.strip():
                yield rest, done
            return
        buf = rest + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            rest = buf
            continue
        rest = buf[cut + 1 :]
        yield buf[: cut + 1], done


def _read_jsonl(source: str | bytes, name: str, options: ReadOptions) -> Iterator[Chunk]:
    first_line = 1
    as_text: list[str] = []  # fields found mixed in this file, read as text from then on
    with _stream(source, name) as f:
        for block, done in _blocks(f, options.block_bytes):
            lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            if block.strip():
                try:
                    # Arrow's JSON parser does not check UTF-8; a bad byte must not get through.
                    block.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _json_error(block, first_line, name, exc) from exc
                table = _parse_jsonl(block, first_line, name, as_text)
                yield Chunk(table, done, tuple(table.column_names))
            first_line += lines


_SCALAR_KINDS = frozenset({"number", "string", "boolean"})
# A JSON number, true or false: the unquoted scalars of a mixed field.
_JSON_SCALAR = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false"


def _null_first_row(block: bytes, first_line: int, name: str) -> bytes:
    """The block with a first row of JSON ``null`` written as ``{}`` (the same bytes long).

    pyarrow 26's JSON reader kills the process (SIGSEGV) on a block that starts with the token
    ``null``. A later ``null`` row it reads as a row of missing values, which ``{}`` also is; a
    first line that starts with ``null`` and goes on is not JSON, and an error here.
    """
    start = len(block) - len(block.lstrip())
    if block[start : start + 4] != b"null":
        return block
    end = block.find(b"\n", start)
    if block[start + 4 : len(block) if end < 0 else end].strip():
        raise DataError(
            "cannot parse JSON Lines: the line is not a JSON object",
            file=name,
            line=first_line + block.count(b"\n", 0, start),
        )
    return block[:start] + b"{}  " + block[start + 4 :]


def _parse_jsonl(block: bytes, first_line: int, name: str, as_text: list[str]) -> pa.Table:
    """Parse one block; fields in ``as_text`` (grown here when a field turns out mixed) are read
    as the text of their values (see the module docstring)."""
    block = _null_first_row(block, first_line, name)
    while True:
        data = _quote_scalars(block, as_text) if as_text else pa.py_buffer(block)
        try:
            return pajson.read_json(
                pa.BufferReader(data),
                read_options=pajson.ReadOptions(block_size=len(data) + 1),
            )
        except pa.ArrowInvalid as exc:
            field = _mixed_scalar_field(str(exc))
            if field is None or field in as_text:
                raise _json_error(block, first_line, name, exc) from exc
            as_text.append(field)


def _mixed_scalar_field(msg: str) -> str | None:
    """The top-level field of a "changed from <kind> to <kind>" error between two scalar kinds."""
    m = _JSON_CHANGED.search(msg)
    if m is None or {m.group(2), m.group(3)} - _SCALAR_KINDS:
        return None
    path = m.group(1)
    return path[1:] if path.count("/") == 1 else None


def _re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it."""
    return "".join(
        c if c.isascii() and (c.isalnum() or c == "_") else f"\\x{{{ord(c):x}}}" for c in text
    )


def _quote_scalars(block: bytes, fields: Sequence[str]) -> pa.Buffer:
    """The block (valid UTF-8) with every unquoted scalar of the top-level ``fields`` quoted.

    A key is matched only after ``{`` or ``,`` (and whitespace): inside a JSON string a quote is
    escaped, so ``,"name":`` there would read ``,\\"name\\":``. A key of a nested object with the
    same name is quoted too; nested values cannot be profiled anyway.
    """
    keys = "|".join(_re2_literal(json.dumps(f, ensure_ascii=False)) for f in fields)
    pattern = rf"([{{,]\s*(?:{keys})\s*:\s*)({_JSON_SCALAR})"
    out = pc.replace_substring_regex(
        pa.array([block], pa.large_string()), pattern=pattern, replacement=r'\1"\2"'
    )
    buf: pa.Buffer = out[0].as_buffer()
    return buf


def _json_error(block: bytes, first_line: int, name: str, exc: Exception) -> DataError:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as bad:
        bad_line = first_line + block.count(b"\n", 0, bad.start)
        start = block.rfind(b"\n", 0, bad.start) + 1
        return DataError(
            f"not valid UTF-8 text at byte {bad.start - start + 1} of the line; re-encode the file as UTF-8",
            file=name,
            line=bad_line,
        )
    msg = str(exc)
    row = _JSON_ROW.search(msg)
    col = _JSON_COL.search(msg)
    line: int | None = None
    if row:
        # Arrow counts non-empty lines; map its row index to the physical line.
        seen = -1
        for i, text in enumerate(block.split(b"\n")):  # only on the error path
            if text.strip():
                seen += 1
                if seen == int(row.group(1)):
                    line = first_line + i
                    break
    column = col.group(1).lstrip("/") if col else None
    changed = _JSON_CHANGED.search(msg)
    if changed and {changed.group(2), changed.group(3)} & {"object", "array"}:
        return DataError(
            f"the field changes from JSON {changed.group(2)} to {changed.group(3)} values at this "
            "line; nested values (objects, arrays) cannot be profiled: flatten them first",
            file=name,
            line=line,
            column=column,
        )
    if changed:
        return DataError(
            f"the field changes from JSON {changed.group(2)} to {changed.group(3)} values at this "
            "line and cannot be read as text (a nested field, or a key spelled with escapes); "
            "make it one JSON type",
            file=name,
            line=line,
            column=column,
        )
    return DataError(f"cannot parse JSON Lines: {msg}", file=name, line=line, column=column)


# ---- Parquet ---------------------------------------------------------------------------------


def _read_parquet(
    source: str | bytes, name: str, options: ReadOptions, columns: Sequence[str] | None = None
) -> Iterator[Chunk]:
    try:
        # pre_buffer (Arrow's default) keeps every row group's read-ahead until the file is done:
        # memory then grows with the file. Off, memory stays at one row group.
        pf = pq.ParquetFile(
            pa.BufferReader(source) if isinstance(source, bytes) else source, pre_buffer=False
        )
        size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
        total_rows = max(1, pf.metadata.num_rows)
        rows = 0
        names = tuple(pf.schema_arrow.names)
        wanted = None if columns is None else [c for c in columns if c in names]
        for batch in pf.iter_batches(batch_size=options.batch_rows, columns=wanted):
            rows += batch.num_rows
            yield Chunk(batch, size * rows // total_rows, names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read Parquet: {exc}", file=name) from exc
