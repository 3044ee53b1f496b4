"""Per-value type classification and per-column type inference, the way SageMaker describes it.

Every non-null value of a chunk is classified, vectorised with Arrow compute kernels (a text
column in one C pass over its buffers in the compiled build: :mod:`analyzer.numparse`, the same
counts and float64 bits), as one of

* ``Integral``   an integer literal (``^[+-]?[0-9]+$`` for text; any value of an integer column),
* ``Fractional`` a decimal or scientific literal (``1.5``, ``.5``, ``1e-3``; any value of a float column),
* ``String``     anything else (``"abc"``, ``" 1"``, ``"nan"``, ``"inf"``, ``"1,5"``),

and nulls (CSV empty fields, JSON null/absent keys, Arrow nulls, float NaN) are counted as missing.
Text is never coerced leniently: ``"nan"``, ``"inf"`` or a padded ``" 7"`` stay strings, so nothing
silently becomes a number. A column's inferred type follows Deequ's DataType analyzer, the one
SageMaker's analyzer runs:

* ``Unknown``    when every value is missing;
* ``String``     when the share of String values among non-missing ones exceeds ``threshold``
                 (default 0.0, SageMaker's rule: one string makes the column a String);
* ``Fractional`` when any number is fractional;
* ``Integral``   otherwise.

With a threshold above zero a mostly numeric column stays numeric and its String values are
counted (``type_counts.String``) and reported, not converted. Integers beyond 2**53 lose
precision when profiled as float64; that is stated, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analyzer import numparse
from analyzer.errors import DataError

NULL, INTEGRAL, FRACTIONAL, STRING = 0, 1, 2, 3
TYPE_COUNT_NAMES = ("Missing", "Integral", "Fractional", "String")

_INT_RE = r"^[+-]?[0-9]+$"
NUMBER_PATTERN = _NUM_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


class InferredType(StrEnum):
    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"
    UNKNOWN = "Unknown"

    @property
    def is_numeric(self) -> bool:
        return self in (InferredType.INTEGRAL, InferredType.FRACTIONAL)


@dataclass(frozen=True, slots=True)
class Classified:
    """One chunk of one column: type counts, the numbers (NaN elsewhere) and the raw text."""

    counts: npt.NDArray[np.int64]  # [missing, integral, fractional, string]
    values: npt.NDArray[np.float64]  # one per row; NaN where missing or not a number
    text: pa.Array | None  # the non-null values as strings, when the column may be a String


def infer_type(counts: npt.NDArray[np.int64], threshold: float = 0.0) -> InferredType:
    """The column type from its accumulated type counts (see the module docstring)."""
    present = int(counts[INTEGRAL] + counts[FRACTIONAL] + counts[STRING])
    if present == 0:
        return InferredType.UNKNOWN
    if counts[STRING] / present > threshold:
        return InferredType.STRING
    if counts[FRACTIONAL] > 0:
        return InferredType.FRACTIONAL
    return InferredType.INTEGRAL


def _counts(missing: int, integral: int, fractional: int, string: int) -> npt.NDArray[np.int64]:
    return np.array([missing, integral, fractional, string], dtype=np.int64)


def _float_values(arr: pa.Array) -> npt.NDArray[np.float64]:
    out = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=np.float64)


def classify(
    arr: pa.Array | pa.ChunkedArray,
    *,
    name: str = "?",
    want_text: bool = True,
    utf8_checked: bool = False,
) -> Classified:
    """Classify one chunk of one column; ``want_text`` keeps the raw strings for String stats;
    ``utf8_checked``: text known to be UTF-8 (Arrow's CSV reader checks it) is not checked again."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    n = len(arr)
    if pa.types.is_null(t):
        return Classified(_counts(n, 0, 0, 0), np.full(n, np.nan), None)
    if pa.types.is_integer(t):
        nulls = arr.null_count
        return Classified(_counts(nulls, n - nulls, 0, 0), _float_values(arr), None)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = _float_values(arr)
        missing = int(np.isnan(values).sum())  # Arrow nulls became NaN too
        return Classified(_counts(missing, 0, n - missing, 0), values, None)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            if not utf8_checked:
                arr.validate(full=True)  # Parquet/JSON readers do not all check UTF-8
        except pa.ArrowInvalid as exc:
            raise DataError(
                "not valid UTF-8 text; re-encode the data as UTF-8", column=name
            ) from exc
        return _classify_text(arr, want_text)
    if pa.types.is_boolean(t) or pa.types.is_temporal(t) or pa.types.is_binary(t):
        # SageMaker has no Boolean/Date type: such values are categories, as text.
        try:
            text = pc.cast(arr, pa.string())
        except pa.ArrowInvalid as exc:
            raise DataError(f"values of type {t} are not valid UTF-8 text", column=name) from exc
        nulls = arr.null_count
        return Classified(_counts(nulls, 0, 0, n - nulls), np.full(n, np.nan), text)
    raise DataError(
        f"nested values of type {t} cannot be profiled; flatten them first "
        "(for example with a preprocessing step that emits one column per field)",
        column=name,
    )


def _classify_text(arr: pa.Array, want_text: bool) -> Classified:
    n = len(arr)
    nulls = arr.null_count
    text = arr if want_text else None
    if nulls == n:
        return Classified(_counts(n, 0, 0, 0), np.full(n, np.nan), None)
    if numparse.compiled:  # the same counts and values in one pass over the buffers
        counts, values, _ = numparse.classify_buffers(arr)
        return Classified(_counts(*counts), values, text)
    return _classify_text_arrow(arr, text)


def _classify_text_arrow(arr: pa.Array, text: pa.Array | None) -> Classified:
    """:func:`_classify_text` with Arrow compute kernels (the build without ``_numparse``)."""
    n = len(arr)
    nulls = arr.null_count
    # Fast path: every value parses as a number. Arrow's parser accepts "nan"/"inf", which we
    # do not, so a non-finite result sends the chunk down the strict path. A failing cast costs
    # as much as a full parse (and casting with nulls is slow), so a sample is tried first and
    # only the non-null values are cast.
    dense = arr.drop_null() if nulls else arr
    sample = dense.slice(0, 64)
    parsed = None
    try:
        pc.cast(sample, pa.float64())
        parsed = np.asarray(
            pc.cast(dense, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if parsed is not None and bool(np.isfinite(parsed).all()):
        integral = _count_integral(dense, sample, parsed)
        if nulls:
            values = np.full(n, np.nan)
            values[_bools(arr.is_valid())] = parsed
        else:
            values = parsed
        return Classified(_counts(nulls, integral, n - nulls - integral, 0), values, text)
    # Strict path: classify each distinct value once, then map the classes to the rows.
    enc = pc.dictionary_encode(arr)
    dic, idx = enc.dictionary, enc.indices
    idx_np = np.asarray(pc.fill_null(idx, 0).to_numpy(zero_copy_only=False), dtype=np.intp)
    valid = np.asarray(idx.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    per_value = np.bincount(idx_np[valid], minlength=len(dic))
    is_int = _bools(pc.match_substring_regex(dic, _INT_RE))
    is_num = _bools(pc.match_substring_regex(dic, _NUM_RE))
    integral = int(per_value[is_int].sum())
    numeric = int(per_value[is_num].sum())
    if numeric:
        nums = pc.if_else(pa.array(is_num), dic, pa.scalar(None, dic.type))
        values = _float_values(nums)[idx_np]
        values[~valid] = np.nan
    else:
        values = np.full(n, np.nan)
    return Classified(
        _counts(nulls, integral, numeric - integral, n - nulls - numeric), values, text
    )


def _count_integral(numbers: pa.Array, sample: pa.Array, parsed: npt.NDArray[np.float64]) -> int:
    """How many of ``numbers`` (text that parsed as the finite ``parsed``) are integer literals."""
    # Only integer-valued numbers can be integer literals ("2" but also "2.0", "1e3"); among
    # those, a literal is integral exactly when it holds no '.', 'e' or 'E'.
    whole = parsed == np.floor(parsed)
    if whole[: len(sample)].all():  # else the sample holds a fraction: no integer cast can pass
        try:
            pc.cast(sample, pa.int64())
            pc.cast(numbers, pa.int64())  # cheap when it succeeds
            return len(numbers)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if not whole.any():
        return 0
    candidates = numbers.filter(pa.array(whole))
    marked = pc.match_substring_regex(candidates, "[.eE]")
    return len(candidates) - int(pc.sum(marked).as_py() or 0)


def _bools(arr: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)
