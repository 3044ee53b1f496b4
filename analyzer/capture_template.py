"""Capture lines of one layout read by one Arrow CSV parse of the whole chunk, no JSON tokeniser.

The sidecar writes every record of an endpoint in the same layout: the same keys in the same
order, CSV payloads, ``orjson``'s compact separators; only the values change (the payload, the
event id, the time, latencies). Split at commas, such a line is a row of fixed width: the
envelope's fields, then the payload's values, then the envelope again. So a chunk whose lines all
share the first line's layout is read by one CSV parse (commas, no quoting, every column text):
the payload's columns are the parser's table, the column holding ``inferenceTime`` gives the
times, and every other column is checked against the first line's (equal, or where the first
line has a value other than a key, that value's JSON kind). That replaces Arrow's JSON reader of
the envelopes (it tokenises every byte of every line) and the second CSV parse of the payloads.

A chunk is read here only when all of this holds, else :func:`canonical_chunk` returns None and
the general reader (:mod:`analyzer.capture_columns`) takes it, so results never depend on which
reader ran:

* no backslash (so no JSON escape), no control character but the line ends, valid UTF-8, no
  empty line, each line's count of ``"`` equal to the first line's;
* the first line is a JSON object without duplicate keys or whitespace between tokens, with a
  plain ``CSV`` input (``captureData.endpointInput.data``/``encoding``) and a string
  ``eventMetadata.inferenceTime``, and no number/true/false/null under ``captureData`` or
  ``eventMetadata`` or as ``modeltap.targetModel``;
* every line has the first line's number of comma-separated fields; the fields around the
  payload start and end with the first line's text around it; the input's encoding field is the
  first line's; every other field equals the first line's or matches it with each value string
  (no ``"``) and each scalar (a JSON number, true, false, null) free.

Line for line this is the JSON the first line is, with other values of the same kinds: the quote
count pins every string to its place (a ``"`` inside the payload or time would be one too many),
and the fields pin the rest. The payload's columns are converted as
:meth:`~analyzer.payloads.PayloadParser.read_joined_csv` converts them (text, Arrow's null
values), so the table is the one the general reader builds. The compiled build cuts the lines
at commas in C instead (:mod:`analyzer.numparse`): a field equal to the first line's is compared
in place and only the time, the payload and the fields that vary become columns, the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from analyzer import numparse
from analyzer.payloads import PayloadParser

_NULL_VALUES = pa.array(pacsv.ConvertOptions().null_values, pa.string())
_NULL_TEXTS = frozenset(pacsv.ConvertOptions().null_values)
_LITERAL = r"(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)"
_LITERAL_BYTES = frozenset(b"0123456789+-.eEtruefalsn")
_STRUCTURE = frozenset(b"{}[]:,")
_META = frozenset(r"\.^$|?*+()[]{}")
_PAYLOAD = ("captureData", "endpointInput", "data")
_ENCODING = ("captureData", "endpointInput", "encoding")
_TIME = ("eventMetadata", "inferenceTime")


@dataclass(frozen=True)
class _Layout:
    """The first line's layout: field texts and checks, where the payload and time are."""

    width: int  # comma-separated fields of a line
    quotes: int  # '"' in a line
    first: int  # the payload's first field
    last: int  # the payload's last field
    head: bytes  # the first payload field's text before the payload
    tail: bytes  # the last payload field's text after the payload
    time: int  # the field holding inferenceTime
    time_head: bytes
    time_tail: bytes
    fields: tuple[tuple[int, str, str | None], ...]  # other fields: index, text, pattern
    constant: frozenset[int]  # fields that must equal the first line's
    strings: dict[int, tuple[bytes, bytes]]  # fields whose pattern is ^prefix[^"]*suffix$


def canonical_chunk(
    chunk: memoryview | bytes, parser: PayloadParser
) -> tuple[pa.Array, pa.Table] | None:
    """Each line's ``inferenceTime`` (text) and its payload row, if the chunk's lines all have
    its first line's layout (see the module docstring); None otherwise."""
    buf = np.frombuffer(chunk, dtype=np.uint8)
    if len(buf) == 0 or len(buf) >= 1 << 31:
        return None
    layout = _layout(_first_line(chunk))
    if layout is None:
        return None
    if numparse.compiled:  # the four byte counts below in one pass
        ends, controls, escapes, quotes = numparse.byte_counts(chunk)
    else:
        ends, controls = int(np.count_nonzero(buf == 0x0A)), int(np.count_nonzero(buf < 0x20))
        escapes, quotes = int(np.count_nonzero(buf == 0x5C)), int(np.count_nonzero(buf == 0x22))
    lines = ends + (buf[-1] != 0x0A)
    if controls != ends or escapes:
        return None  # a control character or an escape
    text = pa.py_buffer(chunk)
    if not valid_utf8(text):
        return None
    if numparse.compiled:
        found = _split_read(chunk, layout, lines)
        if found is None or quotes != layout.quotes * lines:
            return None
        times, payload = found
        return times, pa.table(payload, names=[parser._name(j) for j in range(len(payload))])
    names = [f"f{i}" for i in range(layout.width)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(text),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(buf) + 1
            ),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                check_utf8=False,  # the whole chunk was checked above (a third of the parse)
            ),
        )
    except pa.ArrowInvalid:
        return None  # a line of another width
    if table.num_rows != lines:
        return None  # an empty line (skipped by the CSV reader)
    columns = [_one_chunk(table.column(i)) for i in range(layout.width)]
    for i, field, pattern in layout.fields:
        col = columns[i]
        if _all(pc.equal(col, field)):
            continue
        if i in layout.constant or pattern is None:
            return None
        if not _all(pc.match_substring_regex(col, pattern)):
            return None
    time = columns[layout.time]
    if not (
        _all(pc.starts_with(time, layout.time_head)) and _all(pc.ends_with(time, layout.time_tail))
    ):
        return None
    times = _cut(time, layout.time_head, layout.time_tail)
    payload = columns[layout.first : layout.last + 1]
    if not (
        _all(pc.starts_with(payload[0], layout.head))
        and _all(pc.ends_with(payload[-1], layout.tail))
    ):
        return None
    payload[0] = _cut(payload[0], layout.head, b"")
    payload[-1] = _cut(payload[-1], b"", layout.tail)
    if layout.first == layout.last and not _all(pc.greater(pc.binary_length(payload[0]), 0)):
        return None  # an empty payload: counted as such by the general reader
    for j in (0, len(payload) - 1):
        is_null = pc.is_in(payload[j], value_set=_NULL_VALUES)
        payload[j] = pc.if_else(is_null, pa.scalar(None, pa.string()), payload[j])
    if quotes != layout.quotes * lines:
        return None  # a '"' in a payload or time: each line has at least the first's elsewhere
    rows = pa.table(payload, names=[parser._name(j) for j in range(len(payload))])
    return times, rows


def _split_read(
    chunk: memoryview | bytes, layout: _Layout, lines: int
) -> tuple[pa.Array, list[pa.Array]] | None:
    """:func:`canonical_chunk`'s CSV parse and field checks in the compiled build: the lines cut
    at commas in C (``analyzer.numparse``), a field equal to the first line's compared in place,
    only the time, the payload and the fields that vary built as columns. Gives the Arrow path's
    times and payload columns, or None where it gives None."""
    starts = numparse.split_chunk(chunk, layout.width, lines)
    if starts is None:
        return None  # a line of another width, or an empty line
    for i, field, pattern in layout.fields:
        if field not in _NULL_TEXTS and numparse.field_is(chunk, starts, i, field.encode()):
            continue
        if i in layout.constant or pattern is None:
            return None
        if i in layout.strings:  # the pattern checked in place
            if numparse.field_is_string(chunk, starts, i, *layout.strings[i]):
                continue
            return None
        col = numparse.field_columns(chunk, starts, i, i, nulls=numparse.NULLS_REFUSED)
        if col is None or not _all(pc.match_substring_regex(col[0], pattern)):
            return None  # (a null field fails the Arrow path's comparison and pattern too)
    time = numparse.field_columns(chunk, starts, layout.time, layout.time, layout.time_head,
                                  layout.time_tail, nulls=numparse.NULLS_ARE_TEXT)  # fmt: skip
    one = layout.first == layout.last  # an empty payload is refused before nulls are read
    payload = numparse.field_columns(chunk, starts, layout.first, layout.last, layout.head,
                                     layout.tail, nulls=numparse.NULLS_ARE_TEXT if one
                                     else numparse.NULLS_ARE_NULL)  # fmt: skip
    if time is None or payload is None:
        return None
    if one:
        if not _all(pc.greater(pc.binary_length(payload[0]), 0)):
            return None  # an empty payload: counted as such by the general reader
        is_null = pc.is_in(payload[0], value_set=_NULL_VALUES)
        payload[0] = pc.if_else(is_null, pa.scalar(None, pa.string()), payload[0])
    return time[0], payload


def valid_utf8(text: pa.Buffer) -> bool:
    """Whether the bytes are UTF-8 (one vectorised check of the whole chunk)."""
    if text.size >= 1 << 31:
        return False
    offsets = pa.py_buffer(np.array([0, text.size], np.int32).tobytes())
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, offsets, text]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _first_line(chunk: memoryview | bytes) -> bytes:
    size = 4096
    while True:
        head = bytes(chunk[:size])
        at = head.find(b"\n")
        if at >= 0:
            return head[:at]
        if size >= len(chunk):
            return head
        size *= 4


def _cut(col: pa.Array, head: bytes, tail: bytes) -> pa.Array:
    """``col`` without ``head`` at its start and ``tail`` at its end (checked to be there)."""
    if not head and not tail:
        return col
    start, stop = len(head.decode()), len(tail.decode())
    out: pa.Array = (
        pc.utf8_slice_codeunits(col, start, -stop) if stop else pc.utf8_slice_codeunits(col, start)
    )
    return out


def _all(mask: pa.BooleanArray) -> bool:
    return bool(mask.true_count == len(mask))


def _layout(line: bytes) -> _Layout | None:
    """The layout of a chunk's first line, or None if it is not one this reader takes."""
    if b"\\" in line:
        return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not _plain_csv_record(doc):
        return None
    parts = line.split(b'"')
    values: dict[tuple[str | None, ...], tuple[int, int]] = {}
    free: list[tuple[int, int, str]] = []  # value strings ("S") and scalars ("L") in the line
    stack: list[tuple[bool, list[str | None], set[str]]] = []  # (is an object, [key], keys)
    pos = 0
    for k, part in enumerate(parts):
        start, pos = pos, pos + len(part) + 1
        if k % 2:  # a string (no escapes: no backslash in the chunk)
            if k + 1 < len(parts) and parts[k + 1][:1] == b":":
                if not stack or not stack[-1][0]:
                    return None
                key = part.decode()
                if key in stack[-1][2]:
                    return None  # a duplicate key
                stack[-1][2].add(key)
                stack[-1][1][0] = key
            else:
                values[tuple(f[1][0] for f in stack)] = (start, start + len(part))
                free.append((start, start + len(part), "S"))
            continue
        i = 0
        while i < len(part):
            c = part[i]
            if c in b"{[":
                stack.append((c == 0x7B, [None], set()))
            elif c in b"}]":
                stack.pop()
            elif c in _LITERAL_BYTES:
                j = i
                while j < len(part) and part[j] in _LITERAL_BYTES:
                    j += 1
                path = tuple(f[1][0] for f in stack)
                if path[0] in ("captureData", "eventMetadata") or path == (
                    "modeltap",
                    "targetModel",
                ):
                    return None  # a scalar where the general reader wants text
                free.append((start + i, start + j, "L"))
                i = j
                continue
            elif c not in _STRUCTURE:
                return None  # whitespace between tokens
            i += 1
    commas = [i for i, c in enumerate(line) if c == 0x2C]
    bounds = [-1, *commas, len(line)]  # field i is line[bounds[i] + 1 : bounds[i + 1]]

    def field_of(at: int) -> int:
        return sum(1 for c in commas if c < at)

    (ps, pe), (ts, te), (es, _) = values[_PAYLOAD], values[_TIME], values[_ENCODING]
    first, last, time, encoding = field_of(ps), field_of(pe), field_of(ts), field_of(es)
    if (
        field_of(te) != time
        or first <= time <= last
        or first <= encoding <= last
        or encoding == time
    ):
        return None
    fields, strings = [], {}
    for i in range(len(bounds) - 1):
        if first <= i <= last or i == time:
            continue
        lo, hi = bounds[i] + 1, bounds[i + 1]
        fields.append((i, line[lo:hi].decode(), _pattern(line, lo, hi, free)))
        inside = [(s, e, k) for s, e, k in free if not (e < lo or s > hi)]  # as _pattern
        if len(inside) == 1 and inside[0][2] == "S":
            start, end = max(inside[0][0], lo), min(inside[0][1], hi)
            strings[i] = (line[lo:start], line[end:hi])
    return _Layout(
        width=len(bounds) - 1,
        quotes=line.count(b'"'),
        first=first,
        last=last,
        head=line[bounds[first] + 1 : ps],
        tail=line[pe : bounds[last + 1]],
        time=time,
        time_head=line[bounds[time] + 1 : ts],
        time_tail=line[te : bounds[time + 1]],
        fields=tuple(fields),
        constant=frozenset([encoding]),
        strings=strings,
    )


def _plain_csv_record(doc: object) -> bool:
    """A record whose input is a plain CSV payload and whose inferenceTime is text."""
    if type(doc) is not dict:
        return False
    capture, meta = doc.get("captureData"), doc.get("eventMetadata")
    side = capture.get("endpointInput") if type(capture) is dict else None
    return (
        type(side) is dict
        and type(side.get("data")) is str
        and side.get("encoding") == "CSV"
        and type(meta) is dict
        and type(meta.get("inferenceTime")) is str
    )


def _pattern(line: bytes, lo: int, hi: int, free: list[tuple[int, int, str]]) -> str | None:
    """A regular expression for field ``line[lo:hi]`` with its values free (None if it has
    none): each value string any text without ``"``, each scalar any JSON scalar."""
    out, at, found = [], lo, False
    for start, end, kind in free:
        if end < lo or start > hi:
            continue
        start, end = max(start, lo), min(end, hi)
        out.append(_escape(line[at:start]))
        out.append('[^"]*' if kind == "S" else _LITERAL)
        at, found = end, True
    if not found:
        return None
    out.append(_escape(line[at:hi]))
    return "^" + "".join(out) + "$"


def _escape(text: bytes) -> str:
    return "".join("\\" + ch if ch in _META else ch for ch in text.decode())


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
