"""SageMaker's baseline_drift_check distance (Deequ's L-infinity), Simple and Robust.

Formulas (docs/formats.md §4, Deequ ``Distance.scala``):

* numeric ``linf_simple = max_x |F_base(x) - F_window(x)|``, the KS D of the present values. Read
  here from the exact quantile-anchored bins (``analyzer.drift.ks``: never above the exact D,
  at most the largest bin mass below it), or from the two KLL sketches when a baseline has no
  bins (a SageMaker statistics.json; within 2 x 0.18% at k = 2048), as Deequ does.
* categorical ``LInfinity = max_c |count_base(c)/n - count_window(c)/m|`` over the union of
  categories: a per-category frequency difference, not a CDF.
* ``linf_robust = max(0, linf_simple - c(alpha) * sqrt((n + m) / (n * m)))`` for both: the KS
  critical value is subtracted, so small windows do not raise alarms. ``c(alpha)`` is 1.8 by
  default (Deequ's constant, alpha ~ 0.003), or ``sqrt(-ln(alpha / 2) / 2)`` when alpha is given.

Applies to: numeric and categorical features.
Default threshold: 0.1 (``comparison_threshold`` / ``categorical_comparison_threshold``); a
violation when the distance is strictly above it.
Smoothing: none. n and m count present values only (missing values are not part of either CDF).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from analyzer.distance import ks_kll
from analyzer.drift.inputs import CategoryCounts, binned
from analyzer.drift.ks import ks_statistic
from analyzer.numeric import NumericSummary

Method = Literal["Simple", "Robust"]
DEFAULT_C = 1.8
"""Deequ's default c(alpha) for the Robust correction (alpha ~ 0.003)."""
DEFAULT_THRESHOLD = 0.1


def c_alpha(alpha: float | None = None) -> float:
    """The KS critical constant: 1.8 by default, else sqrt(-ln(alpha/2)/2)."""
    if alpha is None:
        return DEFAULT_C
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    return math.sqrt(-math.log(alpha / 2.0) / 2.0)


def robust(simple: float, n: int, m: int, alpha: float | None = None) -> float:
    """linf_robust from linf_simple and the two present counts."""
    if n == 0 or m == 0 or math.isnan(simple):
        return math.nan
    return max(0.0, simple - c_alpha(alpha) * math.sqrt((n + m) / (n * m)))


def _apply(simple: float, n: int, m: int, method: Method, alpha: float | None) -> float:
    if method == "Simple":
        return simple
    if method == "Robust":
        return robust(simple, n, m, alpha)
    raise ValueError(f"comparison_method must be Simple or Robust, got {method!r}")


def linf_numeric(
    base: NumericSummary,
    window: NumericSummary,
    method: Method = "Simple",
    alpha: float | None = None,
) -> float:
    """Numeric distance: binned KS D (KLL sketches if either side has no bins), then the method."""
    if base.bins is not None and window.bins is not None:
        simple = ks_statistic(binned(base, window))
    else:
        simple = ks_kll(base, window)
    return _apply(simple, base.count, window.count, method, alpha)


def linf_categorical(
    c: CategoryCounts, method: Method = "Simple", alpha: float | None = None
) -> float:
    """Categorical distance: the largest per-category share difference, then the method."""
    n, m = c.n, c.m
    if n == 0 or m == 0:
        return math.nan
    simple = float(np.max(np.abs(c.base / n - c.window / m)))
    return _apply(simple, n, m, method, alpha)
