"""A capture object read in columns: Arrow's JSON reader for the records, one Arrow CSV parse of
all CSV payloads, a vectorised ``inferenceTime`` check, no Python dict per record.

The record-by-record reader (:func:`analyzer.object_profile.records_table`) decoded every line
into Python dicts: 15-20 us a record, and memory that followed the object's size. Here an object
is read a chunk of lines at a time (:data:`CHUNK_BYTES`), each chunk's records become Arrow
columns (only the fields the analyzer reads: each side's ``data``, ``encoding`` and
``observedContentType``, ``inferenceTime``, ``modeltap.targetModel``), and the payloads go to
the same :class:`~analyzer.payloads.PayloadParser` table builders as before.

The results are those of the record-by-record reader, counts and reasons included. Whatever
the columnar path does not read exactly the same way falls back to that reader for the chunk:
a line Arrow cannot read (not JSON, not an object, a field of an unexpected type), a side that
is not a plain ``CSV``/``JSON`` payload (base64, TEXT, missing encoding: those rows go through
:func:`~analyzer.capture_payload.read_side`), an ``inferenceTime`` not in the sidecar's
``YYYY-MM-DDTHH:MM:SSZ`` form (parsed one by one as before), and outputs whose row count
disagrees with the inputs'. An object larger than one chunk is profiled in batches of chunks
(:data:`CHUNK_BATCH_ROWS`), so its float sums may differ from a single update in the last bits (as any
merge does). An object may
come as pieces (``Store.get_stream``): they are cut into exactly the chunks of the whole object.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import itertools
import logging
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from analyzer import numparse
from analyzer.capture_payload import INPUT, OUTPUT, PayloadError, rows_from_json
from analyzer.capture_records import records_table
from analyzer.capture_template import canonical_chunk, valid_utf8
from analyzer.errors import DataError
from analyzer.jsonrows import envelope_table, rows_table
from analyzer.object_stream import ObjectData, whole
from analyzer.payloads import ParseStats, PayloadParser, concat_tables
from analyzer.profile import Profile
from analyzer.window import ReadStats, Window, gzipped, parse_time

log = logging.getLogger(__name__)

CHUNK_BYTES = 2 << 20
"""Lines of an object read and parsed together (about 3,300 of bench/monitor's records): bounds
memory whatever the object's size (4 MiB peaked 10-30 MiB higher in bench/monitor, for no
CPU saved now that chunks are profiled in batches)."""

CHUNK_BATCH_ROWS = 12_000
"""Rows of an object's consecutive chunks profiled in one update: most of what a larger update
saves (25 columns cost ~4 ms an update whatever its size). Peak RSS grows with it: in
bench/monitor (100,000-record objects, jemalloc) 1 chunk a time peaked at 244-260 MiB and
5.6 s of CPU, 12,000 rows at 258-283 MiB and 3.8-4.1 s, 25,000 rows at 305-317 MiB and 3.4-3.6 s."""

_BLOCK_BYTES = 1 << 20  # Arrow JSON reader block (larger blocks were slower)

_SIDE = pa.struct(
    [("data", pa.string()), ("encoding", pa.string()), ("observedContentType", pa.string())]
)
_SCHEMA = pa.schema(
    [
        ("captureData", pa.struct([(INPUT, _SIDE), (OUTPUT, _SIDE)])),
        ("eventMetadata", pa.struct([("inferenceTime", pa.string())])),
        ("modeltap", pa.struct([("targetModel", pa.string())])),
    ]
)
NO_TIME = np.iinfo(np.int64).min
_TIME_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]:[0-5][0-9]Z$"


GUNZIP_PIECE = 1 << 20
"""Bytes of unpacked text a gzipped object yields at a time."""


class _Fallback(Exception):
    """This chunk needs the record-by-record reader."""


class DamagedObject(ValueError):
    """A gzipped object's data is damaged; it can be found part-way through the object (it is
    unpacked as it is read), so the rows its earlier chunks gave must be dropped."""


def damaged(key: str, exc: DamagedObject) -> tuple[ReadStats, ParseStats]:
    """The counts of a damaged object, as the record reader gives them: one bad object."""
    log.warning("skipping capture object %s: %s", key, exc)
    return ReadStats(objects=1, bad_objects=1, bad_keys=[key]), ParseStats()


def profile_capture_columns(
    key: str,
    data: ObjectData,
    window: Window,
    parser: PayloadParser,
    baseline: Profile,
    target_model: str = "",
    outputs: PayloadParser | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    batch_rows: int = CHUNK_BATCH_ROWS,
) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
    """Parse and profile one capture object, chunk by chunk (runs on a worker thread).

    A chunk that cannot be profiled (a nested value alone in its column: in the whole object it
    reads as text beside that column's other values) sends the whole object to the record reader,
    so the outcome does not depend on where the chunks were cut. Consecutive chunks' tables of
    one schema are profiled together, up to ``batch_rows`` rows (a profile update costs a few
    milliseconds whatever its size). ``data`` may be the object's
    pieces (:mod:`analyzer.object_stream`): then only a piece and a chunk are held at once,
    except for a gzipped object (its packed bytes are held; the text is unpacked as it is
    read) and that whole-object fallback. A gzipped object found damaged part-way through
    gives nothing but one bad object, as the record reader does."""
    read, stats = ReadStats(objects=1), ParseStats()
    prof: Profile | None = None
    columns: dict[str, None] = {}
    tables = capture_tables(key, data, window, parser, target_model, outputs, read, stats,
                            chunk_bytes=chunk_bytes)  # fmt: skip
    pending: list[pa.Table] = []
    try:
        for table in itertools.chain(tables, [None]):
            if pending and (
                table is None
                or table.schema != pending[0].schema
                or sum(t.num_rows for t in pending) >= batch_rows
            ):
                if prof is None:
                    prof = Profile.empty(baseline=baseline)
                batch = pending[0] if len(pending) == 1 else pa.concat_tables(pending)
                prof.update(batch, utf8_checked=True)  # checked by the readers
                pending = []
            if table is not None:
                pending.append(table)
                columns.update(dict.fromkeys(table.column_names))
    except DamagedObject as exc:
        read, stats = damaged(key, exc)
        return None, read, stats, []
    except DataError:
        table, read, stats = records_table(key, whole(data), window, parser, target_model, outputs)
        if table is None:
            return None, read, stats, []
        prof = Profile.empty(baseline=baseline)
        prof.update(table)  # raises as the record reader does if the object cannot be profiled
        return prof, read, stats, table.column_names
    if prof is None:
        return None, read, stats, []
    return prof, read, stats, list(columns)


def capture_tables(
    key: str,
    data: ObjectData,
    window: Window,
    parser: PayloadParser,
    target_model: str,
    outputs: PayloadParser | None,
    read: ReadStats,
    stats: ParseStats,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[pa.Table]:
    """The rows of one capture object, a table per chunk; counts go to ``read`` and ``stats``.
    Raises :class:`DamagedObject` for damaged gzip data, possibly after some tables: the caller
    drops them and counts the object with :func:`damaged`."""
    for chunk in _object_chunks(key, data, chunk_bytes):
        try:
            table, c_read, c_stats = _chunk_table(chunk, window, parser, target_model, outputs)
        except _Fallback:
            table, c_read, c_stats = records_table(
                key, bytes(chunk), window, parser, target_model, outputs, decoded=True
            )
        read.records += c_read.records
        read.outside_window += c_read.outside_window
        read.bad_lines += c_read.bad_lines
        read.saw_times(c_read.first_time, c_read.last_time)
        stats.records += c_stats.records
        stats.rows += c_stats.rows
        stats.failed += c_stats.failed
        for reason, n in c_stats.reasons.items():
            stats.reasons[reason] = stats.reasons.get(reason, 0) + n
        if table is not None:
            yield table
    if read.bad_lines:
        log.warning("skipped %d malformed lines of %s", read.bad_lines, key)
        read.bad_keys.append(key)


def _object_chunks(key: str, data: ObjectData, size: int) -> Iterator[memoryview | bytes]:
    """The object's text in chunks of lines (:func:`_chunks`' cuts, whether ``data`` is whole or
    in pieces, packed or not). A gzipped object is unpacked as its chunks are read, so memory
    follows its packed size, not its text's; damage raises :class:`DamagedObject` when met."""
    if isinstance(data, bytes):
        if gzipped(key, data):
            return _piece_chunks(b"", _gunzip(data), size)
        return iter(_chunks(data, size))
    pieces = data()
    head = b""
    for piece in pieces:  # enough bytes to see the gzip magic
        head += piece
        if len(head) >= 2:
            break
    if gzipped(key, head):
        return _piece_chunks(b"", _gunzip(head + b"".join(pieces)), size)
    return _piece_chunks(head, pieces, size)


def _gunzip(data: bytes) -> Iterator[bytes]:
    """The text of gzip ``data`` in pieces of :data:`GUNZIP_PIECE` bytes, read as
    ``gzip.decompress`` reads it (members one after another, zero padding between them, each
    member's CRC and length checked)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as packed:
            while piece := packed.read(GUNZIP_PIECE):
                yield piece
    except (OSError, EOFError, zlib.error) as exc:
        raise DamagedObject(f"damaged gzip data: {exc}") from exc


def _piece_chunks(head: bytes, pieces: Iterator[bytes], size: int) -> Iterator[memoryview | bytes]:
    """:func:`_chunks` of the concatenated pieces, holding about one chunk at a time: a chunk
    ends at the first line end at or after ``size`` bytes, or at the end of the text. The
    pieces are joined once per batch of chunks and the chunks are views of that text (a
    bytearray cut from the front copied every byte four times: ~30 ms a 64 MB object)."""
    parts: list[bytes | memoryview] = [head]
    held = len(head)
    for piece in itertools.chain([b""], pieces):
        parts.append(piece)
        held += len(piece)
        if held <= size:
            continue
        text = b"".join(parts)
        view, start = memoryview(text), 0
        while len(text) - start > size:
            cut = text.find(b"\n", start + size)
            if cut < 0:
                break
            yield view[start : cut + 1]
            start = cut + 1
        parts, held = [view[start:]], len(text) - start
    if held:
        yield b"".join(parts)


def _chunks(text: bytes, size: int) -> list[memoryview]:
    """``text`` cut at line ends into pieces of about ``size`` bytes (views, not copies)."""
    view = memoryview(text)
    out, start = [], 0
    while start < len(text):
        cut = text.find(b"\n", start + size) if start + size < len(text) else -1
        end = len(text) if cut < 0 else cut + 1
        out.append(view[start:end])
        start = end
    return out


def _chunk_table(
    chunk: memoryview | bytes,
    window: Window,
    parser: PayloadParser,
    target_model: str,
    outputs: PayloadParser | None,
) -> tuple[pa.Table | None, ReadStats, ParseStats]:
    read, stats = ReadStats(), ParseStats()
    found = None if target_model or outputs is not None else canonical_chunk(chunk, parser)
    if found is not None:  # one layout throughout: one CSV parse, no JSON tokeniser
        times, rows = found
        keep = _in_window(np.ones(len(times), dtype=bool), _inference_us(times), window, read)
        if not keep.any():
            return None, read, stats
        table = rows if keep.all() else rows.filter(pa.array(keep))
        stats.records += table.num_rows
        stats.rows += table.num_rows
        return table, read, stats
    if not valid_utf8(pa.py_buffer(chunk)):
        raise _Fallback  # Arrow's JSON reader does not check the fields it skips are UTF-8
    # In C where built (None otherwise); it reads only chunks whose lines all start with "{".
    envelope = envelope_table(chunk, _SCHEMA)
    if envelope is None:
        if not _lines_are_objects(chunk):
            raise _Fallback
        try:
            envelope = pajson.read_json(
                pa.BufferReader(pa.py_buffer(chunk)),
                read_options=pajson.ReadOptions(use_threads=False, block_size=_BLOCK_BYTES),
                parse_options=pajson.ParseOptions(
                    explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"
                ),
            ).combine_chunks()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _Fallback from exc
    if envelope.num_rows == 0:
        return None, read, stats
    capture = envelope.column("captureData").chunk(0)
    is_record = _np_bool(capture.is_valid())
    when = _inference_us(envelope.column("eventMetadata").chunk(0).field("inferenceTime"))
    keep = _in_window(is_record, when, window, read)
    if target_model:
        model = envelope.column("modeltap").chunk(0).field("targetModel")
        keep &= _np_bool(pc.equal(model, target_model))
    if not keep.any():
        return None, read, stats
    kept = capture if keep.all() else capture.filter(pa.array(keep))
    table = parse_side(parser, kept.field(INPUT), stats)
    if outputs is not None:
        out = parse_side(outputs, kept.field(OUTPUT), ParseStats())
        if out.num_rows != table.num_rows:
            raise _Fallback  # records are matched one by one there
        for name in out.column_names:
            if name not in table.column_names:
                table = table.append_column(name, out.column(name))
    if table.num_rows == 0:
        return None, read, stats
    return table, read, stats


def _in_window(
    is_record: npt.NDArray[np.bool_], when: npt.NDArray[np.int64], window: Window, read: ReadStats
) -> npt.NDArray[np.bool_]:
    """Which lines are records timed within the window; the read counts go to ``read``."""
    has_time = when != NO_TIME
    start, end = _us(window.start), _us(window.end)
    inside = (when >= start) & (when < end)
    timed = when[is_record & has_time]
    if len(timed):
        read.saw_times(int(timed.min()) / 1e6, int(timed.max()) / 1e6)
    read.bad_lines = int((~is_record).sum() + (is_record & ~has_time).sum())
    read.outside_window = int((is_record & has_time & ~inside).sum())
    keep: npt.NDArray[np.bool_] = is_record & has_time & inside
    read.records = int(keep.sum())
    return keep


def _lines_are_objects(chunk: memoryview | bytes) -> bool:
    """Whether every line starts with ``{`` or is empty. Arrow's JSON reader is only handed
    such chunks: it rejects other lines, but a line such as ``null`` crashes it (pyarrow 26)."""
    buf = np.frombuffer(chunk, dtype=np.uint8)
    starts = np.flatnonzero(buf[:-1] == 0x0A) + 1
    firsts = buf[starts]
    ok = (firsts == 0x7B) | (firsts == 0x0A)
    return bool(ok.all()) and (len(buf) == 0 or buf[0] == 0x7B)


def parse_side(parser: PayloadParser, side: pa.StructArray, stats: ParseStats) -> pa.Table:
    """One side of the kept records as the parser's table (``PayloadParser.parse``'s result)."""
    data, encoding = side.field("data"), side.field("encoding")
    is_csv = _np_bool(pc.equal(encoding, "CSV"))
    is_json = _np_bool(pc.equal(encoding, "JSON"))
    plain = _np_bool(side.is_valid()) & _np_bool(data.is_valid()) & (is_csv | is_json)
    if not plain.all():  # base64, TEXT, content-type-only, missing sides: as before
        records = [{"captureData": {parser.side: p}} for p in _side_dicts(side)]
        return parser.parse(records, stats)
    stats.records += len(side)
    tables = []
    if is_csv.any():
        texts = pc.utf8_trim(_where(data, is_csv), "\r\n")
        empty = _np_bool(pc.equal(pc.binary_length(texts), 0))
        for _ in range(int(empty.sum())):
            stats.fail("empty")
        if not empty.all():
            texts = texts.filter(pa.array(~empty)) if empty.any() else texts
            tables.append(_csv_table(parser, texts, stats))
    if is_json.any():
        output = parser.side == OUTPUT
        key = "predictions" if output else "instances"
        texts = _where(data, is_json)
        read = rows_table(texts, key, parser._name)  # in C where built, else None
        if read is not None:
            tables.append(read)
        else:
            rows = _one_row_payloads(texts, key)
            if rows is None:
                rows = _payload_rows(texts, key, output, stats)
            if rows:
                tables.append(parser._json(rows))
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({n: pa.array([], pa.string()) for n in parser.names})
    table = concat_tables(tables)
    stats.rows += table.num_rows
    return table


def _payload_rows(texts: pa.Array, key: str, output: bool, stats: ParseStats) -> list[Any]:
    """The rows of JSON payloads parsed one by one (failures counted in ``stats``)."""
    rows: list[Any] = []
    for raw in texts.to_pylist():
        try:
            doc = orjson.loads(raw)
            inner = doc.get(key) if type(doc) is dict else None
            if type(inner) is list and inner and type(inner[0]) is list:
                rows.extend(inner)  # what rows_from_json returns here, without its checks
            else:
                rows.extend(rows_from_json(doc, output))
        except (orjson.JSONDecodeError, PayloadError, ValueError) as exc:
            log.debug("unparseable JSON payload: %s", exc)
            stats.fail("bad_json")
    return rows


def _one_row_payloads(texts: pa.Array, key: str) -> list[Any] | None:
    """The rows of JSON payloads that are all ``{"<key>":[[...]]}`` with no other bracket, from
    one ``orjson.loads`` of ``[[m1],[m2],...]`` (the middles joined) instead of one a payload;
    None for anything else (then each payload is parsed alone). The rows are those of the
    payloads parsed alone: without brackets in the middles, a middle that is not a valid list of
    values either fails the joined parse or (a string running over a separator) leaves fewer
    rows than payloads."""
    head, tail = f'{{"{key}":[[', "]]}"
    if not (
        _np_bool(pc.starts_with(texts, head)).all() and _np_bool(pc.ends_with(texts, tail)).all()
    ):
        return None
    middles = pc.utf8_slice_codeunits(texts, len(head), -len(tail))
    joined = pc.binary_join(
        pa.ListArray.from_arrays(pa.array([0, len(middles)], pa.int32()), middles), "],["
    )
    body = joined.buffers()[2]
    raw = b"" if body is None else body.to_pybytes()
    buf = np.frombuffer(raw, dtype=np.uint8)
    n = len(texts)
    if np.count_nonzero(buf == 0x5B) != n - 1 or np.count_nonzero(buf == 0x5D) != n - 1:
        return None  # a bracket inside a payload
    try:
        rows = orjson.loads(b"[[" + raw + b"]]")
    except orjson.JSONDecodeError:
        return None
    if len(rows) != n:
        return None
    found: list[Any] = rows
    return found


def _csv_table(parser: PayloadParser, texts: pa.Array, stats: ParseStats) -> pa.Table:
    """All CSV payloads in one Arrow parse of their newline-joined bytes (no Python copy), as
    the record reader joins them; payloads holding a quote are parsed one by one, as it does."""
    if _np_bool(pc.match_substring(texts, '"')).any():
        return parser._csv([t.encode() for t in texts.to_pylist()], stats)
    joined = pc.binary_join_element_wise(texts, pa.scalar(""), "\n")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    lo, hi = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
    values = joined.buffers()[2]
    assert values is not None
    first = texts[0].as_py().encode()
    try:
        return parser.read_joined_csv(  # Arrow strings: valid UTF-8
            values.slice(lo, hi - lo), first.split(b"\n", 1)[0], utf8_checked=True
        )
    except pa.ArrowInvalid:
        return parser._csv([t.encode() for t in texts.to_pylist()], stats)


def _where(arr: pa.Array, mask: npt.NDArray[np.bool_]) -> pa.Array:
    return arr if mask.all() else arr.filter(pa.array(mask))


def _side_dicts(side: pa.StructArray) -> list[dict[str, Any] | None]:
    """A side's payloads as dicts (fields that were absent or null as None, which
    :func:`~analyzer.capture_payload.read_side` treats alike)."""
    found: list[dict[str, Any] | None] = side.to_pylist()
    return found


def _inference_us(times: pa.Array) -> npt.NDArray[np.int64]:
    """Each record's ``inferenceTime`` in microseconds since the epoch; NO_TIME when missing or
    malformed (:func:`analyzer.window.parse_time`'s rules)."""
    out, done = _plain_us(times)
    if done.all():
        return out
    strict = _np_bool(pc.match_substring_regex(times, _TIME_RE)) & ~done
    if strict.any():
        parsed = pc.strptime(
            times.filter(pa.array(strict)), format="%Y-%m-%dT%H:%M:%SZ", unit="us",
            error_is_null=True,
        )  # fmt: skip
        values = np.asarray(
            pc.fill_null(parsed.cast(pa.int64()), NO_TIME).to_numpy(), dtype=np.int64
        )
        out[strict] = values
    others = np.flatnonzero(~strict & ~done & _np_bool(times.is_valid()))
    if len(others):
        for i, text in zip(others, times.take(pa.array(others)).to_pylist(), strict=True):
            when = parse_time(text)
            if when is not None:
                out[i] = _us(when)
    return out


_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_SEPARATORS = np.array([4, 7, 10, 13, 16, 19])
_SEPARATOR_BYTES = np.frombuffer(b"--T::Z", dtype=np.uint8)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _plain_us(times: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The times of the sidecar's form (``YYYY-MM-DDTHH:MM:SSZ``, a real date from 1970 on)
    read from their bytes with numpy, and which rows those were; the others are left to
    :func:`_inference_us`' general rules (which give these rows the same value)."""
    n = len(times)
    if numparse.compiled and pa.types.is_string(times.type):  # the same, in one C pass
        found, done = numparse.plain_times(times)
        return np.where(done, found, NO_TIME), done
    out = np.full(n, NO_TIME, dtype=np.int64)
    _, offsets_buf, data_buf = times.buffers()
    if n == 0 or offsets_buf is None or data_buf is None:
        return out, np.zeros(n, dtype=bool)
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[times.offset : times.offset + n + 1]
    done = (np.diff(offsets) == 20) & _np_bool(times.is_valid())
    rows = np.flatnonzero(done)
    if len(rows) == 0:
        return out, done
    text = np.frombuffer(data_buf, dtype=np.uint8)[offsets[rows][:, None] + np.arange(20)]
    d = (text[:, _DIGITS] - 48).astype(np.int64)  # uint8: bytes below '0' wrap to > 9
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute, second = (
        d[:, 8] * 10 + d[:, 9],
        d[:, 10] * 10 + d[:, 11],
        d[:, 12] * 10 + d[:, 13],
    )
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok = (
        (d <= 9).all(axis=1)
        & (text[:, _SEPARATORS] == _SEPARATOR_BYTES).all(axis=1)
        & (year >= 1970)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= _MONTH_DAYS[np.clip(month, 0, 12)] + (leap & (month == 2)))
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    out[rows[ok]] = seconds[ok] * 1_000_000
    done[rows[~ok]] = False
    return out, done


def _us(when: dt.datetime) -> int:
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)
