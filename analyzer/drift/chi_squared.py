"""Chi-square tests of a categorical feature's window counts against its baseline.

Two tests, the same cell merging:

* ``goodness_of_fit`` (SageMaker's ``categorical_drift_method: ChiSquared``, per formats.md):
  window counts o_i against expected counts ``e_i = m * b_i`` from the baseline shares b_i;
  ``X2 = sum (o_i - e_i)**2 / e_i``, dof = cells - 1, as ``scipy.stats.chisquare``. It treats the
  baseline shares as exact, so when the baseline is not much larger than the window it rejects
  too often (X2 is inflated by about 1 + m/n under no drift): use it for SageMaker compatibility.
* ``homogeneity`` (the statistical decision): the 2 x k contingency table of baseline and window
  counts, ``X2 = sum over both rows (O - E)**2 / E`` with E = row total * column total / N,
  dof = cells - 1, as ``scipy.stats.chi2_contingency(table, correction=False)``. It accounts for
  the baseline's own sampling noise and is the test whose decisions drift-lessons.md asks for.

Applies to: String features (and any feature summarised by category counts).
Default threshold: p < alpha. For the constraint check, a violation when p is below
``categorical_comparison_threshold`` (formats.md's recommendation, SageMaker's own comparison is
undocumented); for the decision, ``analyzer.drift.decide`` after the multiple-testing correction.
Smoothing: none; small cells are merged instead. Missing values are not a category.

Merging (formats.md, Yates/Cochran): cells are sorted by expected count and the smallest are
pooled into one cell until the rule holds: with more than 2 cells, at most 20% of expected counts
below 5; with 2 cells, every expected count at least 10. New categories (baseline count 0) have
an expected count of 0 under goodness of fit and are always pooled (an expected 0 would make X2
infinite); their mass is reported as ``new_share`` either way. Vanished categories (window count 0)
are ordinary cells. If fewer than 2 cells remain, the p-value is NaN (no test possible). For the
homogeneity test the expected count of a cell is that of its smaller row. Merging costs power
when a drifted category is itself small: a new category whose expected count is below 5 is
pooled and can go unseen by the test, which is why ``new_share`` and ``vanished_share`` are
reported beside it.
Error: none; exact on the counts (approximate only if a side exceeded its category cap, which
``CategoryCounts.exact`` reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2

from analyzer.drift.inputs import CategoryCounts

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ChiSquaredResult:
    statistic: float
    pvalue: float
    dof: int
    cells: int
    """Cells tested after merging."""
    merged: int
    """Categories pooled into the one merged cell (0 if none)."""
    new_share: float
    """Window share of categories the baseline never saw."""
    vanished_share: float
    """Baseline share of categories the window does not have."""


def merge_groups(expected: Floats) -> npt.NDArray[np.intp]:
    """Cell index for each category after pooling the smallest expected counts (see above)."""
    k = expected.size
    order = np.argsort(expected, kind="stable")
    e = expected[order]
    csum = np.cumsum(e)
    n_zero = int(np.count_nonzero(e <= 0))
    n_lt5 = int(np.count_nonzero(e < 5))
    pooled_k = k  # fallback: everything in one cell
    for j in range(1, k + 1):  # pool the j smallest (j == 1 pools nothing)
        if j < n_zero or (n_zero and j == n_zero and csum[j - 1] <= 0):
            continue
        cells = k - j + 1
        if cells < 2:
            break
        pooled = csum[j - 1]
        rest = e[j:]
        if cells == 2:
            if pooled >= 10 and rest[0] >= 10:
                pooled_k = j
                break
            continue
        small = max(0, n_lt5 - j) + (1 if pooled < 5 else 0)
        if small <= 0.2 * cells:
            pooled_k = j
            break
    groups = np.empty(k, dtype=np.intp)
    groups[order[:pooled_k]] = 0
    groups[order[pooled_k:]] = np.arange(1, k - pooled_k + 1)
    return groups


def _shares(c: CategoryCounts) -> tuple[float, float]:
    new = float(c.window[c.base == 0].sum() / c.m) if c.m else math.nan
    gone = float(c.base[c.window == 0].sum() / c.n) if c.n else math.nan
    return new, gone


def _nan(c: CategoryCounts, cells: int, merged: int) -> ChiSquaredResult:
    return ChiSquaredResult(math.nan, math.nan, 0, cells, merged, *_shares(c))


def goodness_of_fit(c: CategoryCounts) -> ChiSquaredResult:
    """X2 of the window counts against the baseline's shares (SageMaker's ChiSquared)."""
    n, m = c.n, c.m
    if n == 0 or m == 0:
        return _nan(c, 0, 0)
    expected = np.asarray(m * c.base / n, dtype=np.float64)
    g = merge_groups(expected)
    cells = int(g.max()) + 1
    merged = int(np.count_nonzero(g == 0)) if np.count_nonzero(g == 0) > 1 else 0
    if cells < 2:
        return _nan(c, cells, merged)
    e = np.bincount(g, weights=expected, minlength=cells)
    o = np.bincount(g, weights=c.window, minlength=cells)
    stat = float(np.sum((o - e) ** 2 / e))
    dof = cells - 1
    return ChiSquaredResult(stat, float(chi2.sf(stat, dof)), dof, cells, merged, *_shares(c))


def homogeneity(c: CategoryCounts) -> ChiSquaredResult:
    """X2 of the 2 x k table of baseline and window counts (the two-sample test)."""
    n, m = c.n, c.m
    if n == 0 or m == 0:
        return _nan(c, 0, 0)
    total = c.base + c.window
    g = merge_groups(np.asarray(total * (min(n, m) / (n + m)), dtype=np.float64))
    cells = int(g.max()) + 1
    merged = int(np.count_nonzero(g == 0)) if np.count_nonzero(g == 0) > 1 else 0
    if cells < 2:
        return _nan(c, cells, merged)
    ob = np.bincount(g, weights=c.base, minlength=cells)
    ow = np.bincount(g, weights=c.window, minlength=cells)
    col = ob + ow
    eb = col * n / (n + m)
    ew = col * m / (n + m)
    stat = float(np.sum((ob - eb) ** 2 / eb) + np.sum((ow - ew) ** 2 / ew))
    dof = cells - 1
    return ChiSquaredResult(stat, float(chi2.sf(stat, dof)), dof, cells, merged, *_shares(c))
