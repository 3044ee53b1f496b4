"""Problem types, and labels turned into arrays the metrics can compare.

Labels come from two places that rarely agree on types: the model's predictions (numbers, or
strings when the response was CSV) and the ground-truth file (always CSV text, ``"1"``). So the
two sides are put in one space before anything is compared:

* **Numeric labels.** When every label of both sides parses as a number (ints, floats, bools and
  numeric strings alike), labels are compared as numbers: ``1``, ``1.0``, ``"1"`` and ``True``
  are one label. Integral labels are rendered as ints (``"1"``), others with ``repr``.
* **String labels.** Otherwise every label is compared as its ``str()``; ``1.0`` and ``"1"`` then
  differ, so send labels of one kind.
* A missing label (None, NaN) is an error: rows without ground truth must be dropped before the
  metrics, as the merge of predictions with ground truth does.

The positive label of a binary problem (``positive_label=None``): ``1`` for numeric labels (so
also ``True`` and ``"1"``); for string labels, the label that reads ``true`` or ``yes`` in any
case. Anything else needs ``positive_label``, given in either form (``1`` or ``"1"``). The
positive label need not occur in a window (a window with no positives is still a window), but
when two labels occur one of them must be it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.quality.errors import QualityError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_TRUE_WORDS = ("true", "yes")


class ProblemType(StrEnum):
    """SageMaker's ``problem_type`` values; each names the section of the statistics it writes."""

    REGRESSION = "Regression"
    BINARY = "BinaryClassification"
    MULTICLASS = "MulticlassClassification"

    @classmethod
    def parse(cls, value: ProblemType | str) -> ProblemType:
        """The problem type named by ``value`` (case-insensitive), or a QualityError listing them."""
        if isinstance(value, ProblemType):
            return value
        for member in cls:
            if str(value).lower() == member.value.lower():
                return member
        allowed = ", ".join(m.value for m in cls)
        raise QualityError(f"unknown problem type {value!r}: expected one of {allowed}")

    @property
    def section(self) -> str:
        """The statistics key of this problem's metrics (``binary_classification_metrics``)."""
        return _SECTIONS[self]


_SECTIONS = {
    ProblemType.REGRESSION: "regression_metrics",
    ProblemType.BINARY: "binary_classification_metrics",
    ProblemType.MULTICLASS: "multiclass_classification_metrics",
}


def _array(x: Any, name: str) -> npt.NDArray[Any]:
    a = np.asarray(x)
    if a.ndim != 1:
        raise QualityError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def aligned(name_values: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
    """The inputs as 1-d arrays of one common, non-zero length."""
    arrays = {name: _array(v, name) for name, v in name_values.items()}
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise QualityError(f"inputs differ in length: {lengths}")
    if not any(lengths.values()):
        raise QualityError("no rows: model-quality metrics need at least one labelled row")
    return arrays


def numbers(x: npt.NDArray[Any], name: str) -> Floats:
    """Finite float64 values, or a QualityError naming the input."""
    try:
        out = x.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise QualityError(f"{name} must be numeric: {e}") from e
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise QualityError(f"{name} has {bad} missing or infinite values; drop those rows first")
    return out


def _missing(a: npt.NDArray[Any]) -> int:
    if a.dtype.kind != "O":
        return 0
    return int(np.count_nonzero(np.equal(a, np.array([None], dtype=object)) | np.not_equal(a, a)))


@dataclass(frozen=True)
class Encoded:
    """Both label columns as codes into ``classes`` (sorted), with the classes' JSON names."""

    true: Ints
    pred: Ints
    classes: npt.NDArray[Any]
    numeric: bool

    @property
    def names(self) -> list[str]:
        return [render(c, self.numeric) for c in self.classes]

    def code_of(self, label: Any) -> int | None:
        """The code of ``label`` in this space, None when it does not occur."""
        value = canonical(label, self.numeric)
        hit = np.flatnonzero(self.classes == value)
        return int(hit[0]) if hit.size else None


def canonical(label: Any, numeric: bool) -> Any:
    """One label in the comparison space of the arrays (see the module docstring)."""
    if not numeric:
        return str(label)
    try:
        return float(label)
    except (TypeError, ValueError) as e:
        raise QualityError(f"label {label!r} is not a number, but the labels are numeric") from e


def render(value: Any, numeric: bool) -> str:
    """A label as a JSON key: integral numbers without ``.0``."""
    if not numeric:
        return str(value)
    f = float(value)
    return str(int(f)) if f.is_integer() else repr(f)


def encode(y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> Encoded:
    """Both label columns in one comparison space, as codes into their sorted union."""
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        if _missing(a):
            raise QualityError(
                f"{name} has {_missing(a)} missing labels; drop unlabelled rows first"
            )
    both = np.concatenate([y_true.astype(object), y_pred.astype(object)])
    numeric = True
    try:
        values: npt.NDArray[Any] = both.astype(np.float64)
    except (TypeError, ValueError):
        numeric = False
        values = both.astype(str)
    if numeric and not np.isfinite(values).all():
        raise QualityError("labels must be finite: drop rows with NaN or infinite labels first")
    classes, codes = np.unique(values, return_inverse=True)
    codes = codes.astype(np.int64)
    n = len(y_true)
    return Encoded(codes[:n], codes[n:], classes, numeric)


def positive_code(enc: Encoded, positive_label: Any | None) -> tuple[int | None, str | None]:
    """The positive label's code (None when it does not occur) and JSON name (None if unknown)."""
    if positive_label is None:
        if enc.numeric:
            positive_label = 1
        else:
            words = [c for c in enc.classes if str(c).lower() in _TRUE_WORDS]
            if len(words) != 1 and len(enc.classes) > 1:
                raise QualityError(
                    f"cannot tell the positive label among {enc.names}: pass positive_label"
                )
            if not words:
                return None, None
            positive_label = words[0]
    code = enc.code_of(positive_label)
    if code is None and len(enc.classes) > 1:
        raise QualityError(
            f"positive label {positive_label!r} is not one of the labels {enc.names}"
        )
    return code, render(canonical(positive_label, enc.numeric), enc.numeric)


def positive_mask(y: npt.NDArray[Any], positive_label: Any | None) -> tuple[Bools, str | None]:
    """Which rows of one binary label column hold the positive label, and its JSON name."""
    enc = encode(y, y)
    if len(enc.classes) > 2:
        raise QualityError(f"binary labels expected, got {len(enc.classes)}: {enc.names[:10]}")
    code, name = positive_code(enc, positive_label)
    return (enc.true == code if code is not None else np.zeros(len(y), np.bool_)), name
