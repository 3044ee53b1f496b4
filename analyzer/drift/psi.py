"""Population Stability Index, reported beside the tests but never the drift decision.

Formula: ``PSI = sum_i (w_i - b_i) * ln(w_i / b_i)`` with b_i, w_i the baseline and window shares
of bin (or category) i, the form Deequ's ``populationStabilityIndex`` uses.

Applies to: numeric features over ``n_bins`` (default 10) baseline-quantile bins, merged from the
fine quantile-anchored bins: a coarse bin closes at the first fine edge where the baseline's
cumulative share reaches k/n_bins, so each holds about a tenth of the baseline (a discrete column
may get fewer, uneven bins: a bin never splits a value). Values outside the baseline's range fall
in the first or last coarse bin. Categorical features: one bin per category of the union.

Default threshold: 0.1 (the common "moderate shift" rule; 0.25 "major"). docs/drift.md §3: on 10
quantile bins PSI misses 0.1-sd shifts that the KS test finds at 100k rows, so it is a report.

Smoothing: ``epsilon`` (default 1e-4, a named parameter). A share of 0 on either side is replaced
by epsilon before the logarithm, so a new or vanished bin adds ``(w - eps) * ln(w / eps)``
instead of infinity. Shares that are not 0 are used as they are (not renormalised).
Error: none beyond the coarse bin edges being the fine edges nearest the exact deciles.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from analyzer.drift.inputs import BinnedCounts, CategoryCounts

DEFAULT_EPSILON = 1e-4
"""Share substituted for an empty bin before ln()."""
DEFAULT_BINS = 10
DEFAULT_THRESHOLD = 0.1


def coarse_bins(c: BinnedCounts, n_bins: int = DEFAULT_BINS) -> npt.NDArray[np.intp]:
    """For each fine bin, the index of the baseline-quantile coarse bin it merges into."""
    n = c.n
    if n == 0:
        return np.zeros(len(c.base), dtype=np.intp)
    cum = np.cumsum(c.base) / n
    # A fine bin belongs to coarse bin k when the baseline's share *before* it is in
    # [k/n_bins, (k+1)/n_bins); tiny float slack keeps exact k/n_bins boundaries stable.
    before = np.concatenate([[0.0], cum[:-1]])
    return np.minimum((before * n_bins + 1e-9).astype(np.intp), n_bins - 1)


def psi_shares(base: npt.NDArray[np.int64], window: npt.NDArray[np.int64], epsilon: float) -> float:
    """PSI of two count vectors over the same bins (NaN if either side is empty)."""
    n, m = int(base.sum()), int(window.sum())
    if n == 0 or m == 0:
        return math.nan
    b = base / n
    w = window / m
    b = np.where(b == 0, epsilon, b)
    w = np.where(w == 0, epsilon, w)
    return float(np.sum((w - b) * np.log(w / b)))


def merged_counts(
    c: BinnedCounts, n_bins: int = DEFAULT_BINS
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Baseline and window counts in the coarse bins of ``coarse_bins``."""
    idx = coarse_bins(c, n_bins)
    k = int(idx.max()) + 1 if idx.size else 0
    return (
        np.bincount(idx, weights=c.base, minlength=k).astype(np.int64),
        np.bincount(idx, weights=c.window, minlength=k).astype(np.int64),
    )


def psi_numeric(
    c: BinnedCounts, n_bins: int = DEFAULT_BINS, epsilon: float = DEFAULT_EPSILON
) -> float:
    """PSI over ``n_bins`` baseline-quantile bins merged from the fine bins."""
    base, window = merged_counts(c, n_bins)
    return psi_shares(base, window, epsilon)


def psi_categorical(c: CategoryCounts, epsilon: float = DEFAULT_EPSILON) -> float:
    """PSI over the union of categories."""
    return psi_shares(c.base, c.window, epsilon)
