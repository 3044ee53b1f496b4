"""Numeric drift measures from profiles against scipy on the same raw data.

Stated tolerances: KS D never above scipy's and at most ``error_bound`` below it (equal for
discrete data), p-value never below scipy's asymptotic one; Jensen-Shannon equal to scipy's on
the same bins (1e-12); PSI equal to a hand computation on the same coarse bins (1e-12);
Wasserstein within ``error_bound`` of scipy's, and within 1-3% for drifted data (the
stretched heavy tail included).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, kstwo, wasserstein_distance

from analyzer.baseline import profile
from analyzer.drift import jensen_shannon, ks, linf, psi, wasserstein
from analyzer.drift.inputs import BinnedCounts, binned
from analyzer.numeric import NumericSummary
from analyzer.profile import Profile

N_BASE, N_WIN = 60_000, 40_000


def _tail(x: np.ndarray) -> np.ndarray:
    p95 = np.quantile(x, 0.95)
    return np.where(x > p95, p95 + 2.0 * (x - p95), x)


def _cases() -> list[tuple[str, np.ndarray, np.ndarray, bool]]:
    rng = np.random.default_rng(5)
    return [
        ("normal-same", rng.normal(0, 1, N_BASE), rng.normal(0, 1, N_WIN), False),
        ("normal-shift", rng.normal(0, 1, N_BASE), rng.normal(0.1, 1, N_WIN), False),
        ("normal-var", rng.normal(0, 1, N_BASE), rng.normal(0, 1.5**0.5, N_WIN), False),
        ("uniform-wider", rng.uniform(0, 1, N_BASE), rng.uniform(-0.1, 1.1, N_WIN), False),
        (
            "lognormal-tail",
            rng.lognormal(0, 0.5, N_BASE),
            _tail(rng.lognormal(0, 0.5, N_WIN)),
            False,
        ),
        ("poisson-rate", rng.poisson(3, N_BASE), rng.poisson(3.2, N_WIN), True),
        ("binary-same", rng.integers(0, 2, N_BASE), rng.integers(0, 2, N_WIN), True),
        ("small-n", rng.normal(0, 1, 400), rng.normal(0.3, 1, 150), False),
    ]


CASES = _cases()


@pytest.fixture(scope="module")
def profiled() -> dict[str, tuple[NumericSummary, NumericSummary]]:
    out = {}
    for name, a, b, _ in CASES:
        base = profile({"x": a})
        win = profile({"x": b}, baseline=base)
        out[name] = (base.columns["x"].numeric, win.columns["x"].numeric)
    return out


def _raw_bins(c: BinnedCounts, x: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(c.edges, x, side="right"), minlength=len(c.edges) + 1)


@pytest.mark.parametrize(("name", "a", "b", "integral"), CASES, ids=[c[0] for c in CASES])
def test_ks_against_scipy(
    profiled: dict[str, tuple[NumericSummary, NumericSummary]],
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    integral: bool,
) -> None:
    sa, sb = profiled[name]
    r = ks.ks_test(binned(sa, sb), integral=integral)
    exact = ks_2samp(a, b, method="asymp")
    assert exact.statistic - r.error_bound - 1e-12 <= r.statistic <= exact.statistic + 1e-12
    assert r.pvalue >= exact.pvalue - 1e-12  # binning never makes the test less conservative
    if integral:
        assert r.statistic == pytest.approx(exact.statistic, abs=1e-12)
        assert r.pvalue == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-300)
    en = len(a) * len(b) / (len(a) + len(b))
    assert r.pvalue == pytest.approx(float(kstwo.sf(r.statistic, round(en))), rel=1e-9, abs=1e-300)
    assert r.error_bound < 0.01 if len(a) > 1000 else r.error_bound < 0.05


@pytest.mark.parametrize(("name", "a", "b", "integral"), CASES, ids=[c[0] for c in CASES])
def test_js_and_psi_against_raw_bins(
    profiled: dict[str, tuple[NumericSummary, NumericSummary]],
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    integral: bool,
) -> None:
    sa, sb = profiled[name]
    c = binned(sa, sb)
    ca, cb = _raw_bins(c, a), _raw_bins(c, b)
    assert np.array_equal(ca, c.base) and np.array_equal(cb, c.window)
    expected_js = jensenshannon(ca / ca.sum(), cb / cb.sum(), base=2)
    assert jensen_shannon.js_numeric(c) == pytest.approx(expected_js, abs=1e-12)

    # PSI by hand: 10 coarse bins closing where the baseline's share reaches k/10.
    idx = psi.coarse_bins(c)
    ea = np.array([ca[idx == k].sum() for k in range(idx.max() + 1)]) / ca.sum()
    eb = np.array([cb[idx == k].sum() for k in range(idx.max() + 1)]) / cb.sum()
    ea, eb = np.where(ea == 0, 1e-4, ea), np.where(eb == 0, 1e-4, eb)
    assert psi.psi_numeric(c) == pytest.approx(
        float(np.sum((eb - ea) * np.log(eb / ea))), abs=1e-12
    )
    if not integral and len(a) > 1000:
        assert idx.max() == 9  # ten coarse bins, each about a tenth of the baseline
        shares = np.bincount(idx, weights=ca) / ca.sum()
        assert np.all(np.abs(shares - 0.1) < 0.01)


@pytest.mark.parametrize(("name", "a", "b", "integral"), CASES, ids=[c[0] for c in CASES])
def test_wasserstein_against_scipy(
    profiled: dict[str, tuple[NumericSummary, NumericSummary]],
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    integral: bool,
) -> None:
    sa, sb = profiled[name]
    r = wasserstein.wasserstein(sa, sb, integral=integral)
    exact = wasserstein_distance(a, b)
    assert abs(r.distance - exact) <= r.error_bound + 1e-12
    if name in ("normal-shift", "normal-var", "uniform-wider", "poisson-rate", "lognormal-tail"):
        assert r.distance == pytest.approx(exact, rel=0.01)  # measured: at most 0.8%
    if name == "binary-same":
        assert r.distance == pytest.approx(exact, abs=1e-12)  # point masses: exact
    assert r.normed == pytest.approx(r.distance / np.std(a), rel=1e-9)


def test_heavy_tail_wasserstein_error_is_stated() -> None:
    """The stretched lognormal tail: the error bound holds; the actual error is reported here."""
    rng = np.random.default_rng(9)
    a, b = rng.lognormal(0, 1, 100_000), _tail(rng.lognormal(0, 1, 100_000))
    base = profile({"x": a})
    win = profile({"x": b}, baseline=base)
    r = wasserstein.wasserstein(base.columns["x"].numeric, win.columns["x"].numeric)
    exact = wasserstein_distance(a, b)
    assert abs(r.distance - exact) <= r.error_bound
    # Sparse, wide top bins: shaped by the KLL sketches, W1 stays within ~1% (2% asserted).
    assert abs(r.distance - exact) / exact < 0.02


@pytest.mark.parametrize(("name", "a", "b", "integral"), CASES, ids=[c[0] for c in CASES])
def test_linf_numeric(
    profiled: dict[str, tuple[NumericSummary, NumericSummary]],
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    integral: bool,
) -> None:
    sa, sb = profiled[name]
    exact = ks_2samp(a, b).statistic
    simple = linf.linf_numeric(sa, sb, "Simple")
    assert simple == ks.ks_statistic(binned(sa, sb))
    assert exact - 0.01 <= simple <= exact + 1e-12
    n, m = len(a), len(b)
    robust = linf.linf_numeric(sa, sb, "Robust")
    assert robust == pytest.approx(max(0.0, simple - 1.8 * math.sqrt((n + m) / (n * m))))
    alpha = 0.01
    c = math.sqrt(-math.log(alpha / 2) / 2)
    assert linf.linf_numeric(sa, sb, "Robust", alpha) == pytest.approx(
        max(0.0, simple - c * math.sqrt((n + m) / (n * m)))
    )


def test_linf_falls_back_to_kll_without_bins() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 20_000), rng.normal(0.2, 1, 20_000)
    pa_, pb = profile({"x": a}), profile({"x": b})  # separate baselines: different edges
    sa = pa_.columns["x"].numeric
    sb = Profile.empty(baseline=pb).columns["x"].numeric
    sb.update(b)
    sb.bins, sb.edges = None, None
    assert linf.linf_numeric(sa, sb) == pytest.approx(ks_2samp(a, b).statistic, abs=0.01)


def test_empty_side_gives_nan() -> None:
    base = profile({"x": np.arange(100.0)})
    win = profile({"x": np.full(10, np.nan)}, baseline=base)
    sa, sb = base.columns["x"].numeric, win.columns["x"].numeric
    c = binned(sa, sb)
    r = ks.ks_test(c)
    assert math.isnan(r.statistic) and math.isnan(r.pvalue)
    assert math.isnan(psi.psi_numeric(c)) and math.isnan(jensen_shannon.js_numeric(c))
    assert math.isnan(wasserstein.wasserstein(sa, sb).distance)
    assert math.isnan(linf.linf_numeric(sa, sb, "Robust"))
