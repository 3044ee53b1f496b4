"""Jensen-Shannon distance, base 2, between the baseline and the window.

Formula: ``JS = sqrt((KL(p || r) + KL(q || r)) / 2)`` with r = (p + q) / 2, logarithms base 2,
so 0 <= JS <= 1; the same as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

Applies to: numeric features over the fine quantile-anchored bins (about 1,000 baseline-quantile
bins plus the two outer bins for values outside the baseline's range), categorical features over
the union of categories.
Default threshold: 0.1 (Evidently's for Jensen-Shannon); reported, not the decision: a fixed
distance threshold is not a test (docs/drift.md §2).
Smoothing: none is needed (r > 0 wherever p or q is, and 0 * log 0 = 0).
Error: exact on the binned data. For a numeric feature, binning can only lower JS (the data
processing inequality), so the result is a lower bound of the JS of finer bins.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from analyzer.drift.inputs import BinnedCounts, CategoryCounts

DEFAULT_THRESHOLD = 0.1


def _kl2(p: npt.NDArray[np.float64], r: npt.NDArray[np.float64]) -> float:
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / r[nz])))


def js_counts(base: npt.NDArray[np.int64], window: npt.NDArray[np.int64]) -> float:
    """JS distance (base 2) of two count vectors over the same bins (NaN if either is empty)."""
    n, m = int(base.sum()), int(window.sum())
    if n == 0 or m == 0:
        return math.nan
    p = base / n
    q = window / m
    r = (p + q) / 2.0
    js2 = (_kl2(p, r) + _kl2(q, r)) / 2.0
    return math.sqrt(max(js2, 0.0))


def js_numeric(c: BinnedCounts) -> float:
    """JS distance over the fine bins."""
    return js_counts(c.base, c.window)


def js_categorical(c: CategoryCounts) -> float:
    """JS distance over the categories."""
    return js_counts(c.base, c.window)
