"""A text column's type counts and float64 values in one pass over its Arrow buffers.

:func:`classify_text` gives exactly what :mod:`analyzer.inference`'s Arrow-compute path gives for
a string column (the same counts, the same float64 bits): a number is text matching
``inference.NUMBER_PATTERN`` as a whole, Integral without ``.``/``e``/``E``, its value correctly
rounded. The compiled build (``setup.py`` with ``MODELTAP_COMPILE=1``, as the analyzer image is
built) has it in C (``_numparse.c``): one pass instead of Arrow's text-to-float cast, the sample
and integer casts and the regular expressions that count integral literals. Elsewhere
``classify_text`` is None and inference keeps its Arrow path.

:func:`split_chunk` and :func:`field_columns` (compiled build only) cut a chunk of capture lines
at commas into Arrow string columns, as Arrow's CSV reader does with no quoting and every column
text, without a builder per column (:mod:`analyzer.capture_template`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

_classify: Callable[..., tuple[int, int, int, int]] | None
try:
    from analyzer import _numparse as _native
    from analyzer._numparse import classify_text as _classify
except ImportError:  # not built: the pure-Python checkout
    _classify = None
else:
    _native.set_null_values([v.encode() for v in pacsv.ConvertOptions().null_values])

compiled = _classify is not None


def _buffers(arr: pa.Array) -> tuple[pa.Buffer | None, pa.Buffer, pa.Buffer | None, bool]:
    validity, offsets, data = arr.buffers()
    return (validity if arr.null_count else None), offsets, data, pa.types.is_large_string(arr.type)


def classify_buffers(
    arr: pa.Array, *, kinds: bool = False
) -> tuple[tuple[int, int, int, int], npt.NDArray[np.float64], npt.NDArray[np.uint8] | None]:
    """Counts (missing, integral, fractional, string), each value's float64 (NaN unless a
    number) and, with ``kinds``, each value's kind (0 missing .. 3 String), of a string or
    large_string array; only in the compiled build (see ``compiled``)."""
    if _classify is None:
        raise RuntimeError("analyzer._numparse is not built (MODELTAP_COMPILE=1)")
    validity, offsets, data, wide = _buffers(arr)
    n = len(arr)
    values = np.empty(n, dtype=np.float64)
    kind = np.empty(n, dtype=np.uint8) if kinds else None
    counts = _classify(validity, offsets, data, arr.offset, n, wide, values, kind)
    return counts, values, kind


NULLS_REFUSED, NULLS_ARE_NULL, NULLS_ARE_TEXT = 0, 1, 2


def split_chunk(chunk: memoryview | bytes, width: int, lines: int) -> npt.NDArray[np.int32] | None:
    """Where each line's ``width`` comma-separated fields start (a line's last column: where the
    next line starts); None when a line has another width, a line is empty or the chunk has
    another number of lines (what Arrow's CSV reader refuses or skips). Compiled build only."""
    starts = np.empty((lines, width + 1), dtype=np.int32)
    return starts if _native.split_fields(chunk, width, lines, starts) else None


def field_is(chunk: memoryview | bytes, starts: npt.NDArray[np.int32], j: int, text: bytes) -> bool:
    """Whether field ``j`` of every line is ``text``."""
    lines, width = starts.shape[0], starts.shape[1] - 1
    return bool(_native.field_is(chunk, starts, width, lines, j, text))


def field_is_string(
    chunk: memoryview | bytes, starts: npt.NDArray[np.int32], j: int, prefix: bytes, suffix: bytes
) -> bool:
    """Whether field ``j`` of every line is ``prefix``, text without ``"``, ``suffix`` (and no
    field's text is a CSV null value)."""
    lines, width = starts.shape[0], starts.shape[1] - 1
    return bool(_native.field_is_string(chunk, starts, width, lines, j, prefix, suffix))


def field_columns(
    chunk: memoryview | bytes,
    starts: npt.NDArray[np.int32],
    lo: int,
    hi: int,
    head: bytes = b"",
    tail: bytes = b"",
    *,
    nulls: int = NULLS_ARE_NULL,
) -> list[pa.Array] | None:
    """Fields ``lo``..``hi`` of every line as string arrays, ``head`` cut off the start of the
    first and ``tail`` off the end of the last; a field whose text is one of Arrow's CSV null
    values is null (``NULLS_ARE_NULL``), ends the read (``NULLS_REFUSED``: None) or stays text
    (``NULLS_ARE_TEXT``). None when a field lacks its head or tail."""
    lines, width = starts.shape[0], starts.shape[1] - 1
    found = _native.field_columns(chunk, starts, width, lines, lo, hi, head, tail, nulls)
    if found is None:
        return None
    return [
        pa.Array.from_buffers(
            pa.string(),
            lines,
            [None if valid is None else pa.py_buffer(valid), pa.py_buffer(off), pa.py_buffer(data)],
            null_count=null_count,
        )
        for off, data, valid, null_count in found
    ]


def byte_counts(chunk: memoryview | bytes) -> tuple[int, int, int, int]:
    """Counts of line ends, bytes below 0x20, backslashes and quotes, in one pass."""
    return _native.byte_counts(chunk)


def plain_times(times: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """``inferenceTime`` values of the sidecar's form (``YYYY-MM-DDTHH:MM:SSZ``, a real date
    from 1970 on) in microseconds since the epoch (``no_time`` elsewhere), and which rows those
    were: ``capture_columns._plain_us`` in one pass over the buffers. Compiled build only."""
    validity, offsets, data, _ = _buffers(times)
    n = len(times)
    out = np.empty(n, dtype=np.int64)
    done = np.empty(n, dtype=np.bool_)
    _native.plain_times(validity, offsets, data, times.offset, n, out, done)
    return out, done
