"""The model-quality baseline: a labelled validation set's metrics and suggested constraints.

``modeltap baseline --problem-type ...`` reads the label, prediction and (binary) probability
columns of a validation dataset, computes the metrics as monitoring will, fits the calibration
map that label-free estimation uses (binary with probabilities), and suggests thresholds.
Only the two or three columns are kept in memory (a validation set of 10M rows is ~240 MB).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from analyzer.quality.constraints import suggest_constraints
from analyzer.quality.errors import QualityError
from analyzer.quality.estimate import fit_calibration
from analyzer.quality.labels import ProblemType
from analyzer.quality.metrics import compute
from analyzer.readers import Chunk


@dataclass(frozen=True)
class QualityColumns:
    """Which columns hold what (SageMaker's ground_truth/inference/probability attributes)."""

    problem_type: ProblemType
    label: str
    prediction: str | None = None
    probability: str | None = None
    probability_threshold: float = 0.5
    positive_label: str | None = None


def predicted_labels(
    score: npt.NDArray[np.float64], threshold: float, y_true: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """Labels from probabilities (binary): 1 at or above the threshold, else 0.

    Only for numeric 0/1 labels; string labels need the model's own predicted label.
    """
    try:
        np.asarray(y_true, dtype=np.float64)
    except (TypeError, ValueError):
        raise QualityError(
            "labels are not numeric: give the prediction column, a probability alone can only "
            "stand for 0/1 labels"
        ) from None
    return (score >= threshold).astype(np.int64)


def _column(table: pa.Table, name: str) -> npt.NDArray[Any]:
    if name not in table.column_names:
        raise QualityError(
            f"column {name!r} is not in the dataset (columns: {', '.join(table.column_names)})"
        )
    col = table.column(name)
    if col.null_count:
        raise QualityError(f"column {name!r} has {col.null_count} missing values")
    values: npt.NDArray[Any] = col.to_numpy(zero_copy_only=False)
    return values


def build_quality_baseline(
    chunks: Iterable[Chunk], columns: QualityColumns, *, window_rows: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics.json, constraints.json) of the validation set the chunks hold."""
    wanted = [c for c in (columns.label, columns.prediction, columns.probability) if c]
    parts: list[pa.Table] = []
    for chunk in chunks:
        batch = chunk.batch
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        missing = [c for c in wanted if c not in table.column_names]
        if missing:
            raise QualityError(
                f"column(s) {', '.join(missing)} not in the dataset "
                f"(columns: {', '.join(chunk.file_columns or table.column_names)})"
            )
        parts.append(table.select(wanted))
    if not parts:
        raise QualityError("the dataset has no rows")
    table = pa.concat_tables(parts, promote_options="permissive")
    y_true = _column(table, columns.label)
    score = None
    if columns.probability:
        if columns.problem_type is not ProblemType.BINARY:
            raise QualityError("a probability column applies to BinaryClassification only")
        score = np.asarray(_column(table, columns.probability), dtype=np.float64)
    if columns.prediction:
        y_pred = _column(table, columns.prediction)
    elif score is not None:
        y_pred = predicted_labels(score, columns.probability_threshold, y_true)
    else:
        raise QualityError("give the prediction column (or, for binary, the probability column)")
    stats = compute(
        columns.problem_type, y_true, y_pred, score, positive_label=columns.positive_label
    )
    extra = stats.setdefault("modeltap", {})
    extra["probability_threshold"] = columns.probability_threshold
    if score is not None:
        cal = fit_calibration(y_true, score, positive_label=columns.positive_label)
        extra["calibration"] = cal.to_dict()
    return stats, suggest_constraints(stats, window_rows=window_rows)
