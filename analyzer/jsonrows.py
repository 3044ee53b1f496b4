"""JSON payloads' rows straight into Arrow columns, without a Python value per cell.

:func:`rows_table` reads an Arrow string array of JSON payloads of the common shapes
(``{"instances": [[v1, ..., vn], ...]}`` with ``instances`` its only key, ``predictions`` on the
output side; ``[[...], ...]``; ``[v1, ..., vn]``) into the table
:meth:`analyzer.payloads.PayloadParser._json` builds from the rows orjson decodes: the same
columns, Arrow types and values, bit for bit. The compiled build (``setup.py`` with
``MODELTAP_COMPILE=1``, as the analyzer image is built) does it in C (``_jsonrows.c``): ~25 Python
objects a chunk instead of one a value. Whatever that reader does not read exactly alike (a
nested value, a column mixing kinds, an integer beyond int64, a float that overflows, a payload
that is not JSON, ...) returns None, and so does everything where it is not built: the caller
then takes the Python path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

Columns = list[tuple[str, int, pa.Buffer | None, pa.Buffer, pa.Buffer | None]]


def _unread(
    offsets: object, data: object, offset: int, length: int, key: bytes, alloc: object, /
) -> tuple[int, Columns] | None:
    """Where the C reader is not built: nothing read, the Python path reads it all."""
    return None


Leaf = tuple[int, pa.Buffer | None, pa.Buffer, pa.Buffer]
Struct = tuple[int, pa.Buffer | None]
Leaves = list[Leaf]
Structs = list[Struct]


def _no_envelopes(chunk: object, alloc: object, /) -> tuple[int, Leaves, Structs] | None:
    """Where the C reader is not built: Arrow's JSON reader reads the records."""
    return None


try:
    from analyzer._jsonrows import read_envelopes as _read_envelopes
    from analyzer._jsonrows import read_rows as _read_rows
except ImportError:  # not built: the pure-Python checkout
    _read_rows, _read_envelopes = _unread, _no_envelopes

compiled = _read_rows is not _unread

_TYPES = {"b": pa.bool_(), "i": pa.int64(), "f": pa.float64(), "s": pa.string()}


def rows_table(texts: pa.Array, key: str, name: Callable[[int], str]) -> pa.Table | None:
    """The rows of the payloads ``texts`` as a table (columns named by ``name(position)``), or
    None for the Python path (see the module's docstring)."""
    if not compiled or texts.type != pa.string() or texts.null_count or not len(texts):
        return None
    _, offsets, data = texts.buffers()
    if offsets is None or data is None:
        return None
    found = _read_rows(offsets, data, texts.offset, len(texts), key.encode(), pa.allocate_buffer)
    if found is None:
        return None
    n, columns = found
    if not columns:  # rows of no values (``[[]]``): rows of nulls, as PayloadParser._json
        return pa.table({name(0): pa.nulls(n)}) if n else pa.table({})
    names = [name(j) for j in range(len(columns))]
    if len(set(names)) < len(names):  # a baseline column named like _c3: PayloadParser's rules
        return None
    arrays = {}
    for j, (code, nulls, validity, values, offs) in enumerate(columns):
        if code == "n":
            arr: pa.Array = pa.nulls(n)
        else:
            bufs = [None if validity is None else validity]
            if offs is not None:
                bufs.append(offs)
            bufs.append(values)
            arr = pa.Array.from_buffers(_TYPES[code], n, bufs, null_count=nulls)
        arrays[names[j]] = arr
    return pa.table(arrays)


def envelope_table(chunk: memoryview | bytes, schema: pa.Schema) -> pa.Table | None:
    """The capture records of ``chunk`` (lines of JSON objects, checked UTF-8) as the table
    Arrow's JSON reader gives with ``schema`` (analyzer.capture_columns' fields: its string
    leaves and structs, in that order), or None for Arrow's reader: a line it might read
    otherwise (an escaped key, a repeated one, a field of another type, an empty line, a
    number with an exponent from 100, ...) is left to it."""
    if not compiled:
        return None
    found = _read_envelopes(chunk, pa.allocate_buffer)
    if found is None:
        return None
    n, leaves, structs = found
    it_leaves, it_structs = iter(leaves), iter(structs)
    arrays = [_envelope_array(f.type, n, it_leaves, it_structs) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _envelope_array(
    kind: pa.DataType, n: int, leaves: Iterator[Leaf], structs: Iterator[Struct]
) -> pa.Array:
    """A field of the envelope from the reader's buffers, taken in the schema's order (a
    function of its own: a nested closure calling itself would be a reference cycle, holding
    a chunk's buffers until the garbage collector runs)."""
    if pa.types.is_struct(kind):
        nulls, valid = next(structs)
        children = [
            _envelope_array(kind.field(i).type, n, leaves, structs) for i in range(kind.num_fields)
        ]
        return pa.Array.from_buffers(kind, n, [valid], null_count=nulls, children=children)
    nulls, valid, offsets, values = next(leaves)
    return pa.Array.from_buffers(kind, n, [valid, offsets, values], null_count=nulls)
