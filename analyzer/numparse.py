"""A text column's type counts and float64 values in one pass over its Arrow buffers.

:func:`classify_text` gives exactly what :mod:`analyzer.inference`'s Arrow-compute path gives for
a string column (the same counts, the same float64 bits): a number is text matching
``inference.NUMBER_PATTERN`` as a whole, Integral without ``.``/``e``/``E``, its value correctly
rounded. The compiled build (``setup.py`` with ``MODELTAP_COMPILE=1``, as the analyzer image is
built) has it in C (``_numparse.c``): one pass instead of Arrow's text-to-float cast, the sample
and integer casts and the regular expressions that count integral literals. Elsewhere
``classify_text`` is None and inference keeps its Arrow path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_classify: Callable[..., tuple[int, int, int, int]] | None
try:
    from analyzer._numparse import classify_text as _classify
except ImportError:  # not built: the pure-Python checkout
    _classify = None

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
