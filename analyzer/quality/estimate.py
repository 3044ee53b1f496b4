"""Confidence-based performance estimation (CBPE, as NannyML) for binary classifiers.

Ground truth often arrives days after the predictions. If the model's probabilities are
calibrated, a window's quality can be estimated from them alone: a row with probability p and a
positive decision is a true positive with probability p and a false positive with 1 - p. So

    E[TP] = sum p [d],  E[FP] = sum (1 - p) [d],  E[FN] = sum p [not d],  E[TN] = sum (1 - p) [not d]

with d the model's decision (``score >= threshold``, or the predicted labels when given), and
accuracy = (E[TP] + E[TN]) / n, precision = E[TP] / (E[TP] + E[FP]), recall = E[TP] /
(E[TP] + E[FN]), f1 = 2 E[TP] / (2 E[TP] + E[FP] + E[FN]) (ratios of expectations, as NannyML;
precision 0.0 with no positive decision, recall NaN when sum p = 0).
Expected ROC AUC: the ROC curve of the model's own scores with every row counted as p of a
positive and 1 - p of a negative (``analyzer.quality.curves``: one sort and a cumulative sum).
The ranking is the raw score's, because that is the ranking the realised AUC will judge;
the calibrated p only weighs the rows.

The estimate is only as good as the calibration, and it assumes that the relation between score
and outcome has not changed (covariate shift only): concept drift is invisible to it.

Calibration (``fit_calibration``): isotonic regression of the reference labels on the scores
(pool-adjacent-violators, ``scipy.optimize.isotonic_regression``, run in compiled code), after
grouping equal scores and, beyond ``MAX_BINS`` distinct scores, pooling neighbouring scores into
that many bins of about equal row counts, which bounds the map's size in JSON. The map is the
fitted blocks' end points, applied by linear interpolation and held flat beyond the ends (as
scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``). It serialises to JSON
(``to_dict``) so that it can live in the baseline statistics under ``modeltap.calibration``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.optimize import isotonic_regression

from analyzer.quality.curves import curves
from analyzer.quality.errors import QualityError
from analyzer.quality.labels import Bools, Floats, aligned, numbers, positive_mask
from analyzer.quality.metrics import Index, Value, iso, metric_json, spread

MAX_BINS = 1000
SECTION = "estimated_binary_classification_metrics"


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from model score to probability of the positive label."""

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]
    rows: int = 0
    """Reference rows it was fitted on (for the record)."""

    def __post_init__(self) -> None:
        x, y = np.asarray(self.scores), np.asarray(self.probabilities)
        if x.size == 0 or x.shape != y.shape:
            raise QualityError("a calibration map needs as many probabilities as scores, >= 1")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise QualityError("a calibration map must hold finite numbers")
        if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
            raise QualityError("a calibration map must be non-decreasing in score and probability")
        if y[0] < 0 or y[-1] > 1:
            raise QualityError("calibrated probabilities must lie within [0, 1]")

    def apply(self, scores: Any) -> Floats:
        """Calibrated probabilities of ``scores``."""
        return np.interp(np.asarray(scores, np.float64), self.scores, self.probabilities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "isotonic",
            "rows": self.rows,
            "scores": list(self.scores),
            "probabilities": list(self.probabilities),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Calibration:
        if not isinstance(doc, Mapping) or doc.get("method") != "isotonic":
            raise QualityError(f"not an isotonic calibration map: {str(doc)[:200]}")
        try:
            scores = tuple(float(v) for v in doc["scores"])
            probabilities = tuple(float(v) for v in doc["probabilities"])
        except (KeyError, TypeError, ValueError) as e:
            raise QualityError(f"malformed calibration map: {e}") from e
        return cls(scores, probabilities, int(doc.get("rows", 0)))

    @classmethod
    def from_statistics(cls, statistics: Mapping[str, Any]) -> Calibration:
        """The map stored in baseline statistics under ``modeltap.calibration``."""
        doc = (statistics.get("modeltap") or {}).get("calibration")
        if doc is None:
            raise QualityError("the baseline statistics hold no modeltap.calibration map")
        return cls.from_dict(doc)


def fit_calibration(
    y_true: Any, y_score: Any, *, positive_label: Any | None = None, max_bins: int = MAX_BINS
) -> Calibration:
    """An isotonic calibration map fitted on reference labels and the model's scores."""
    if max_bins < 2:
        raise QualityError(f"max_bins must be at least 2, got {max_bins}")
    arrays = aligned({"y_true": y_true, "y_score": y_score})
    positive, _ = positive_mask(arrays["y_true"], positive_label)
    score = numbers(arrays["y_score"], "y_score")
    n = score.size
    uniq, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    hits = np.bincount(inverse, weights=positive.astype(np.float64), minlength=uniq.size)
    if uniq.size > max_bins:
        # Bins of about n / max_bins rows that never split a run of equal scores.
        before = np.cumsum(counts) - counts
        bins = (before * max_bins) // n
        weight = np.bincount(bins, weights=counts)
        keep = weight > 0
        x = (np.bincount(bins, weights=uniq * counts) / np.where(keep, weight, 1.0))[keep]
        hits, counts = np.bincount(bins, weights=hits)[keep], weight[keep]
        uniq = x
    fit = isotonic_regression(hits / counts, weights=counts.astype(np.float64), increasing=True)
    starts, ends = fit.blocks[:-1], fit.blocks[1:] - 1
    xs = np.column_stack([uniq[starts], uniq[ends]]).ravel()
    ys = np.repeat(fit.x[starts], 2)
    dup = np.r_[False, (xs[1:] == xs[:-1]) & (ys[1:] == ys[:-1])]
    return Calibration(tuple(xs[~dup].tolist()), tuple(ys[~dup].tolist()), n)


def _expected(p: Floats, decided: Bools, score: Floats) -> dict[str, Value]:
    q = 1.0 - p
    etp, efp = float(p[decided].sum()), float(q[decided].sum())
    efn, etn = float(p[~decided].sum()), float(q[~decided].sum())
    n = p.size
    pos = etp + efn
    return {
        "accuracy": (etp + etn) / n,
        "precision": etp / (etp + efp) if etp + efp > 0 else 0.0,
        "recall": etp / pos if pos > 0 else math.nan,
        "f1": 2 * etp / (2 * etp + efp + efn) if pos > 0 else math.nan,
        "auc": curves(score, p, q).auc,
    }


def estimate(
    y_score: Any,
    *,
    calibration: Calibration | None = None,
    threshold: float = 0.5,
    y_pred: Any | None = None,
    positive_label: Any | None = None,
    seed: int = 0,
    evaluation_time: datetime | None = None,
) -> dict[str, Any]:
    """Estimated quality of a window without labels, in the statistics layout.

    ``y_score`` are the model's scores; without ``calibration`` they must already be calibrated
    probabilities. Decisions are ``y_score >= threshold`` unless ``y_pred`` (the model's labels,
    ``positive_label`` as in ``analyzer.quality.labels``) is given.
    """
    inputs = {"y_score": y_score}
    if y_pred is not None:
        inputs["y_pred"] = y_pred
    arrays = aligned(inputs)
    score = numbers(arrays["y_score"], "y_score")
    p = calibration.apply(score) if calibration is not None else score
    if np.any((p < 0) | (p > 1)):
        raise QualityError("probabilities must lie within [0, 1]: pass a calibration map")
    if y_pred is None:
        decided = score >= threshold
    else:
        decided, _ = positive_mask(arrays["y_pred"], positive_label)
    n = score.size

    def measure(i: Index) -> dict[str, Value]:
        return _expected(p[i], decided[i], score[i])

    stats = spread(measure, n, seed)
    section = {k: metric_json(v) for k, v in stats.items()}
    return {
        "version": 0.0,
        "dataset": {"item_count": n, "evaluation_time": iso(evaluation_time or datetime.now(UTC))},
        SECTION: section,
    }
