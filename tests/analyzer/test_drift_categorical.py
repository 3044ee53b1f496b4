"""Categorical drift measures from profiles against scipy on the same raw data.

Tolerances: chi-square statistics and p-values equal scipy's (rel 1e-9) on the same (merged)
cells; Jensen-Shannon equal to scipy's (1e-12); PSI and L-infinity equal to hand computations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, chisquare

from analyzer.baseline import profile
from analyzer.drift import chi_squared, jensen_shannon, linf, psi
from analyzer.drift.inputs import CategoryCounts, categories
from tests.analyzer.counts import category_counts


def _zipf_sample(
    rng: np.random.Generator, k: int, n: int, p: np.ndarray | None = None
) -> np.ndarray:
    if p is None:
        p = 1.0 / np.arange(1, k + 1)
        p = p / p.sum()
    labels = np.array([f"c{i}" for i in range(k)], dtype=object)
    return labels[rng.choice(k, n, p=p)]


def _counts_from_profiles(a: np.ndarray, b: np.ndarray) -> CategoryCounts:
    base = profile({"c": a})
    win = profile({"c": b}, baseline=base)
    return categories(base.columns["c"].strings, win.columns["c"].strings)


def _raw(a: np.ndarray, b: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    va, ca = np.unique(a, return_counts=True)
    vb, cb = np.unique(b, return_counts=True)
    da, db = dict(zip(va, ca, strict=True)), dict(zip(vb, cb, strict=True))
    return (
        np.array([da.get(v, 0) for v in labels]),
        np.array([db.get(v, 0) for v in labels]),
    )


def test_large_cells_match_scipy_without_merging() -> None:
    rng = np.random.default_rng(1)
    a = _zipf_sample(rng, 8, 30_000)
    p = 1.0 / np.arange(1, 9)
    p[2] *= 1.2
    b = _zipf_sample(rng, 8, 20_000, p / p.sum())
    c = _counts_from_profiles(a, b)
    ra, rb = _raw(a, b, c.labels)
    assert np.array_equal(ra, c.base) and np.array_equal(rb, c.window)

    hom = chi_squared.homogeneity(c)
    exp = chi2_contingency(np.vstack([ra, rb]), correction=False)
    assert hom.merged == 0 and hom.cells == 8 and hom.dof == 7
    assert hom.statistic == pytest.approx(exp.statistic, rel=1e-9)
    assert hom.pvalue == pytest.approx(exp.pvalue, rel=1e-9)

    gof = chi_squared.goodness_of_fit(c)
    exp2 = chisquare(rb, ra / ra.sum() * rb.sum())
    assert gof.statistic == pytest.approx(exp2.statistic, rel=1e-9)
    assert gof.pvalue == pytest.approx(exp2.pvalue, rel=1e-9)

    assert jensen_shannon.js_categorical(c) == pytest.approx(
        jensenshannon(ra / ra.sum(), rb / rb.sum(), base=2), abs=1e-12
    )
    pa_, pb = ra / ra.sum(), rb / rb.sum()
    assert psi.psi_categorical(c) == pytest.approx(float(np.sum((pb - pa_) * np.log(pb / pa_))))
    simple = float(np.max(np.abs(pa_ - pb)))
    assert linf.linf_categorical(c) == pytest.approx(simple)
    n, m = ra.sum(), rb.sum()
    assert linf.linf_categorical(c, "Robust") == pytest.approx(
        max(0.0, simple - 1.8 * math.sqrt((n + m) / (n * m)))
    )


def _check_rule(expected: np.ndarray, groups: np.ndarray) -> None:
    cells = np.bincount(groups, weights=expected)
    if cells.size > 2:
        assert np.count_nonzero(cells < 5) <= 0.2 * cells.size
    elif cells.size == 2:
        assert np.all(cells >= 10)
    assert np.all(cells > 0)


def test_small_cells_merged_then_match_scipy() -> None:
    rng = np.random.default_rng(2)
    a = _zipf_sample(rng, 1000, 20_000)
    b = _zipf_sample(rng, 1000, 5_000)
    c = _counts_from_profiles(a, b)
    ra, rb = _raw(a, b, c.labels)

    hom = chi_squared.homogeneity(c)
    total = (ra + rb) * min(c.n, c.m) / (c.n + c.m)
    g = chi_squared.merge_groups(total.astype(np.float64))
    _check_rule(total, g)
    # The pooled cell holds the smallest categories.
    pooled = g == 0
    assert hom.merged == int(pooled.sum()) > 1
    assert total[pooled].max() <= total[~pooled].min()
    table = np.vstack([np.bincount(g, weights=ra), np.bincount(g, weights=rb)])
    exp = chi2_contingency(table, correction=False)
    assert hom.statistic == pytest.approx(exp.statistic, rel=1e-9)
    assert hom.pvalue == pytest.approx(exp.pvalue, rel=1e-9)
    assert hom.dof == exp.dof

    gof = chi_squared.goodness_of_fit(c)
    e = rb.sum() * ra / ra.sum()
    g2 = chi_squared.merge_groups(e.astype(np.float64))
    _check_rule(e, g2)
    exp2 = chisquare(np.bincount(g2, weights=rb), np.bincount(g2, weights=e))
    assert gof.statistic == pytest.approx(exp2.statistic, rel=1e-9)
    assert gof.pvalue == pytest.approx(exp2.pvalue, rel=1e-9)


def test_new_category_is_pooled_for_gof_and_kept_for_homogeneity() -> None:
    c = category_counts(
        {"a": 5000, "b": 3000, "c": 2000}, {"a": 480, "b": 300, "c": 170, "new": 50}
    )
    gof = chi_squared.goodness_of_fit(c)
    assert math.isfinite(gof.statistic)
    assert gof.new_share == pytest.approx(0.05) and gof.vanished_share == 0.0
    # "new" (expected 0) pooled with the smallest baseline category "c".
    e = np.array([500.0, 300.0, 200.0])
    exp = chisquare([480, 300, 220], e)
    assert gof.statistic == pytest.approx(exp.statistic) and gof.merged == 2
    # Homogeneity: the new category's expected count 50 * 1000/11000 = 4.5 is below 5, so the
    # rule pools it with "c" and the test loses it; new_share still reports it.
    hom = chi_squared.homogeneity(c)
    assert hom.merged == 2 and hom.new_share == pytest.approx(0.05)
    exp1 = chi2_contingency([[5000, 3000, 2000], [480, 300, 220]], correction=False)
    assert hom.statistic == pytest.approx(exp1.statistic)
    # Ten times the window: every cell is large enough and the test sees the new category.
    big = category_counts(
        {"a": 5000, "b": 3000, "c": 2000}, {"a": 4800, "b": 3000, "c": 1700, "new": 500}
    )
    hom = chi_squared.homogeneity(big)
    exp2 = chi2_contingency([[5000, 3000, 2000, 0], [4800, 3000, 1700, 500]], correction=False)
    assert hom.statistic == pytest.approx(exp2.statistic) and hom.dof == 3 and hom.merged == 0
    assert hom.pvalue < 1e-50
    assert linf.linf_categorical(c) == pytest.approx(0.05)  # the new category's 5%
    assert math.isfinite(psi.psi_categorical(c))
    # epsilon smoothing by hand for the new category: (0.05 - 1e-4) * ln(0.05 / 1e-4)
    by_hand = sum(
        (w - b) * math.log(w / b) for b, w in [(0.5, 0.48), (0.3, 0.3), (0.2, 0.17), (1e-4, 0.05)]
    )
    assert psi.psi_categorical(c) == pytest.approx(by_hand)
    assert psi.psi_categorical(c, epsilon=1e-6) > psi.psi_categorical(c)


def test_vanished_category_and_two_cells() -> None:
    c = category_counts({"a": 970, "b": 30}, {"a": 1000})
    hom = chi_squared.homogeneity(c)
    assert hom.vanished_share == pytest.approx(0.03)
    exp = chi2_contingency([[970, 30], [1000, 0]], correction=False)
    assert hom.statistic == pytest.approx(exp.statistic) and hom.cells == 2
    # Two cells need every expected count >= 10 (Cochran): b's expected 15 passes.
    gof = chi_squared.goodness_of_fit(category_counts({"a": 990, "b": 10}, {"a": 100}))
    assert math.isnan(gof.pvalue) and gof.cells == 1  # b's expected 1 < 10: pooled, one cell


def test_empty_sides_give_nan() -> None:
    c = category_counts({"a": 10}, {})
    for f in (chi_squared.homogeneity, chi_squared.goodness_of_fit):
        assert math.isnan(f(c).pvalue)
    assert math.isnan(jensen_shannon.js_categorical(c))
    assert math.isnan(psi.psi_categorical(c))
    assert math.isnan(linf.linf_categorical(c, "Robust"))


def test_no_drift_pvalues_are_calibrated() -> None:
    """Under no drift the homogeneity p-values are roughly uniform (high-cardinality Zipf)."""
    rng = np.random.default_rng(3)
    p = 1.0 / np.arange(1, 2001)
    p /= p.sum()
    pvals = []
    for _ in range(40):
        a = np.bincount(rng.choice(2000, 20_000, p=p), minlength=2000)
        b = np.bincount(rng.choice(2000, 20_000, p=p), minlength=2000)
        labels = [str(i) for i in range(2000)]
        keep = (a + b) > 0
        c = CategoryCounts(
            [x for x, k in zip(labels, keep, strict=True) if k], a[keep], b[keep], True
        )
        pvals.append(chi_squared.homogeneity(c).pvalue)
    pv = np.array(pvals)
    assert 0.03 < float(np.mean(pv < 0.2)) < 0.45  # ~0.2 expected
    assert float(np.min(pv)) > 1e-3
