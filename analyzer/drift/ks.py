"""Two-sample Kolmogorov-Smirnov test from the exact binned CDFs.

Formula: ``D = max_x |F_base(x) - F_window(x)|`` with F the empirical CDFs of the present values,
evaluated at every bin edge of the baseline's quantile-anchored bins (``analyzer.numeric``).
p-value: Smirnov's asymptotic two-sided distribution as scipy's ``ks_2samp(method="asymp")``
computes it, ``kstwo.sf(D, round(n*m/(n+m)))`` with n, m the two present counts.

Applies to: numeric features (Integral, Fractional).
Default threshold: none on D itself; the decision is ``p < alpha`` after the multiple-testing
correction of ``analyzer.drift.decide`` (family alpha 0.05).
Smoothing: none.

Error: the binned D is a maximum over a subset of the points, so never above the exact D. Inside
a bin both CDFs rise monotonically, so the gap there exceeds its value at the bin's edges by at
most the smaller of the two sides' shares of that bin: ``error_bound = max_i min(p_i, q_i)``,
about 1/1000 for continuous data on ~1,000 quantile bins, and small for the outer bins (values
outside the baseline's range), where the baseline holds almost nothing. The p-value computed from the binned D is therefore never
smaller than the exact-data one: binning can cost power, never add false alarms.

Bins rebuilt from a SageMaker baseline's KLL sketch (``NumericSummary.bins_exact`` False) hold
the sketch's CDF, not counts: each edge's share is off by up to the sketch's rank error
(``bins_rank_error``, 99% confidence), so D can be off by that much either way. ``error_bound``
then adds it, the p-value is no longer conservative, and drift.json says ``exact: false``.

Ties (discrete and Integral columns with few distinct values): the baseline's edges are then its
distinct values, each bin holds one value, and the CDFs are compared after every jump, which is
exactly how ``ks_2samp`` treats ties, so D is exact (with ``integral=True``, bins one integer
wide add nothing to ``error_bound``). Smirnov's distribution assumes continuous data; with ties the true null distribution of
D is smaller, so the p-value is conservative (an upper bound), as scipy's is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import kstwo, kstwobign

from analyzer.drift.inputs import BinnedCounts


@dataclass(frozen=True)
class KSResult:
    statistic: float
    """D on the binned CDFs (NaN when a side has no present values)."""
    pvalue: float
    n: int
    m: int
    error_bound: float
    """How far below the exact-data D the binned D can be."""


def ks_statistic(c: BinnedCounts) -> float:
    """D = max |F_base - F_window| over the bin edges (NaN if a side is empty)."""
    n, m = c.n, c.m
    if n == 0 or m == 0:
        return math.nan
    fa = np.cumsum(c.base) / n
    fb = np.cumsum(c.window) / m
    return float(np.max(np.abs(fa - fb)))


LARGE_SAMPLE = 100_000
"""Effective sample size above which the p-value uses Kolmogorov's limiting distribution."""


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Smirnov's asymptotic two-sided p-value with the effective size n*m/(n+m), as scipy."""
    if n == 0 or m == 0 or math.isnan(d):
        return math.nan
    big, small = max(n, m), min(n, m)
    en = big * small / (big + small)
    if en > LARGE_SAMPLE:
        # kstwo.sf costs ~0.4 s per call near en = 500k; Kolmogorov's limit agrees to ~3 digits there.
        return float(np.clip(kstwobign.sf(d * math.sqrt(en)), 0.0, 1.0))
    return float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_test(c: BinnedCounts, *, integral: bool = False, rank_error: float = 0.0) -> KSResult:
    """D, its p-value and D's error bound (``integral``: the values are integers; ``rank_error``:
    how far the bins' CDFs can be from the data's at the edges, both sides together)."""
    n, m = c.n, c.m
    d = ks_statistic(c)
    err = 0.0
    if n and m:
        # Inside a bin holding shares p (baseline) and q (window), F_base - F_window moves by at
        # most p up and q down from its values at the bin's edges, and must end at the other
        # edge's value: the gap can exceed both edge values by at most min(p, q).
        mass = np.minimum(c.base / n, c.window / m)
        if integral:
            # An inner bin [e, e + 1) of integers holds the one value e: the CDFs are compared
            # right after its jump, so it hides nothing.
            inner = np.diff(c.edges) <= 1.0
            mass[1:-1][inner] = 0.0
        # From the baseline's maximum (its last edge) on, F_base is 1: if no window value lies
        # above it either, both CDFs are 1 there.
        if c.edges.size and c.base_max == c.edges[-1] and c.window_max <= c.edges[-1]:
            mass[-1] = 0.0
        err = float(mass.max()) + rank_error
    return KSResult(d, ks_pvalue(d, n, m), n, m, err)
