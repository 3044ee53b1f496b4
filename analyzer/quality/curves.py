"""ROC and precision-recall curves of a binary score, their areas, and small copies for JSON.

One pass: sort the scores descending (stable), cumulate the positive and negative weights, and
keep the last row of every run of equal scores, so each point is one distinct threshold and ties
are never split (as ``sklearn.metrics.roc_curve``). Weights are 0/1 for observed labels; CBPE
(``analyzer.quality.estimate``) passes the calibrated probability p and 1 - p instead, which gives
the expected curves.

* ROC AUC: the trapezoidal area under (fpr, tpr) from (0, 0), as ``roc_auc_score``.
* Average precision (``au_prc``): ``sum (R_i - R_{i-1}) * P_i`` over the thresholds in
  decreasing order with R_0 = 0, as ``average_precision_score`` (a step sum, not a trapezoid,
  which would be optimistic).
* Both are NaN when either class has no weight: the ranking of one class says nothing.

The curves written into statistics are thinned to at most ``max_points`` points taken evenly
along the thresholds (the ends are always kept); the areas use every point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzer.quality.labels import Floats

MAX_CURVE_POINTS = 100


@dataclass(frozen=True)
class Curves:
    """Every distinct-threshold point, with the (0, 0) start of the ROC and PR curves."""

    fpr: Floats
    tpr: Floats
    precision: Floats
    recall: Floats

    @property
    def auc(self) -> float:
        if self.fpr.size < 2:
            return float("nan")
        return float(np.sum(np.diff(self.fpr) * (self.tpr[1:] + self.tpr[:-1]) / 2.0))

    @property
    def average_precision(self) -> float:
        if self.recall.size < 2:
            return float("nan")
        return float(np.sum(np.diff(self.recall) * self.precision[1:]))

    def roc_json(self, max_points: int = MAX_CURVE_POINTS) -> dict[str, list[float]]:
        keep = thin(self.fpr.size, max_points)
        return {
            "false_positive_rates": self.fpr[keep].tolist(),
            "true_positive_rates": self.tpr[keep].tolist(),
        }

    def pr_json(self, max_points: int = MAX_CURVE_POINTS) -> dict[str, list[float]]:
        keep = thin(self.recall.size, max_points)
        return {
            "precisions": self.precision[keep].tolist(),
            "recalls": self.recall[keep].tolist(),
        }


_EMPTY = Curves(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))


def curves(score: Floats, pos: Floats, neg: Floats) -> Curves:
    """The curves of ``score`` with per-row positive and negative weights (empty if a class is)."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    tps = np.cumsum(pos[order])
    fps = np.cumsum(neg[order])
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tps, fps = tps[last], fps[last]
    total_pos, total_neg = tps[-1], fps[-1]
    if total_pos <= 0 or total_neg <= 0:
        return _EMPTY
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tps + fps > 0, tps / (tps + fps), 1.0)
    return Curves(
        fpr=np.r_[0.0, fps / total_neg],
        tpr=np.r_[0.0, tps / total_pos],
        precision=np.r_[1.0, precision],
        recall=np.r_[0.0, tps / total_pos],
    )


def thin(size: int, max_points: int) -> npt.NDArray[np.intp]:
    """At most ``max_points`` indices spread evenly over ``range(size)``, ends included."""
    if size <= max_points:
        return np.arange(size)
    return np.unique(np.round(np.linspace(0, size - 1, max_points)).astype(np.intp))
