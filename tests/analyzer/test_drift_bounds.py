"""The stated error bounds hold on wide bins (few bins, so the bounds are not trivially tiny)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance

from analyzer.baseline import profile
from analyzer.drift import ks, wasserstein
from analyzer.drift.inputs import binned
from analyzer.profile import ProfileConfig


@st.composite
def samples(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, bool]:
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(["normal", "lognormal", "integers", "mixture"]))
    n = draw(st.integers(5, 3000))
    m = draw(st.integers(5, 3000))
    shift = draw(st.floats(-1.0, 1.0))
    scale = draw(st.floats(0.5, 2.0))
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0, 1, n), rng.normal(shift, scale, m), False
    if kind == "lognormal":
        return rng.lognormal(0, 1, n), rng.lognormal(shift, scale, m), False
    if kind == "integers":
        hi = draw(st.integers(1, 50))
        return (
            rng.integers(0, hi + 1, n).astype(np.int64),
            rng.integers(0, max(1, hi + 1 + int(10 * shift)), m).clip(-5).astype(np.int64),
            True,
        )
    a = np.concatenate([rng.normal(0, 1, n // 2), rng.exponential(3, n - n // 2)])
    b = np.concatenate([rng.normal(shift, scale, m // 2), rng.exponential(3 * scale, m - m // 2)])
    return a, b, False


@settings(max_examples=60, deadline=None)
@given(samples(), st.sampled_from([5, 20, 100]))
def test_bounds_hold(data: tuple[np.ndarray, np.ndarray, bool], n_bins: int) -> None:
    a, b, integral = data
    base = profile({"x": a}, config=ProfileConfig(n_bins=n_bins))
    win = profile({"x": b}, baseline=base)
    sa, sb = base.columns["x"].numeric, win.columns["x"].numeric
    r = ks.ks_test(binned(sa, sb), integral=integral)
    exact = ks_2samp(a, b, method="asymp").statistic
    assert exact - r.error_bound - 1e-12 <= r.statistic <= exact + 1e-12
    w = wasserstein.wasserstein(sa, sb, integral=integral)
    assert abs(w.estimate - wasserstein_distance(a, b)) <= w.error_bound + 1e-9
