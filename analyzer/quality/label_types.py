"""Ground-truth labels that cannot be labels of the model: found, so they can be left out and said.

A label source that sends "maybe" to a binary classifier, or "high" to a regression, is broken;
mixed into the metrics, such labels either stop them (the label kinds no longer agree) or bend
them. A label is of the wrong type when

* the problem is a regression, or the model's predictions are all numbers, and it is not a
  number (``analyzer.inference``'s strict rule: ``"nan"``, ``"1,5"`` are not numbers);
* the problem is binary, the classes are known — the predictions', the baseline's confusion
  matrix and the positive label make exactly two — and it is neither of them.

Multiclass labels are only held to the predictions' kind: a class the model never predicts and
the baseline never saw may still be a real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from analyzer.inference import classify
from analyzer.quality.labels import ProblemType

Bools = npt.NDArray[np.bool_]


def _numbers(a: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """``a`` as float64, NaN where a value is not a number."""
    if a.dtype.kind in "fiub":
        return np.asarray(a, dtype=np.float64)
    text = pa.array(np.asarray(a, dtype=object).astype(str), pa.string())
    return classify(text, want_text=False).values


def _baseline_classes(statistics: Mapping[str, Any]) -> list[str]:
    section = statistics.get(ProblemType.BINARY.section) or {}
    matrix = section.get("confusion_matrix") if isinstance(section, Mapping) else None
    return [str(k) for k in matrix] if isinstance(matrix, Mapping) else []


def _render(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def wrong_type(
    problem: ProblemType,
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    statistics: Mapping[str, Any],
    positive_label: str | None = None,
) -> tuple[Bools, str]:
    """Which of ``y_true`` cannot be labels of this model (see the module docstring), and what
    a label must be ("numbers", "one of the classes 0, 1")."""
    true_num = _numbers(y_true)
    pred_num = _numbers(y_pred)
    numeric = problem is ProblemType.REGRESSION or bool(np.isfinite(pred_num).all())
    bad: Bools = ~np.isfinite(true_num) if numeric else np.zeros(len(y_true), dtype=np.bool_)
    expected = "numbers" if numeric else "labels"
    if problem is not ProblemType.BINARY or not len(y_true):
        return bad, expected
    extra = [*_baseline_classes(statistics), *([positive_label] if positive_label else [])]
    if numeric:
        extra_num = _numbers(np.asarray(extra, dtype=object)) if extra else np.zeros(0)
        known = np.union1d(np.unique(pred_num), extra_num[np.isfinite(extra_num)])
        if len(known) == 2:
            bad |= ~np.isin(true_num, known)
            expected = f"one of the classes {', '.join(_render(k) for k in known)}"
    else:
        known_text = np.union1d(np.unique(np.asarray(y_pred).astype(str)), np.asarray(extra, str))
        if len(known_text) == 2:
            bad |= ~np.isin(np.asarray(y_true).astype(str), known_text)
            expected = f"one of the classes {', '.join(map(str, known_text))}"
    return bad, expected


def examples(y_true: npt.NDArray[Any], bad: Bools, n: int = 5) -> list[str]:
    """Up to ``n`` distinct wrong labels, sorted, for a message."""
    values = np.unique(np.asarray(y_true)[bad].astype(str))
    return [str(v) for v in values[:n]]


@dataclass
class InvalidLabels:
    """Ground-truth labels that cannot be labels of the model (wrong type or class), as a
    report shows them (model_quality.json, bias/run.json: ``invalid_labels``)."""

    count: int = 0
    of: int = 0
    expected: str = ""
    examples: list[Any] = field(default_factory=list)

    @classmethod
    def found(cls, y_true: npt.NDArray[Any], bad: Bools, expected: str) -> InvalidLabels:
        return cls(int(bad.sum()), len(bad), expected, examples(y_true, bad))

    def problem(self) -> str:
        """The one line that fails the run ('' when every label is valid)."""
        if not self.count:
            return ""
        shown = ", ".join(repr(e) for e in self.examples)
        return (
            f"{self.count} of {self.of} ground-truth labels are not {self.expected} "
            f"(e.g. {shown}); they are left out of the metrics"
        )


__all__ = ["InvalidLabels", "examples", "wrong_type"]
