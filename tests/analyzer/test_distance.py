"""The KS distance read from profiles stays within its stated error of scipy's exact statistic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from analyzer import Profile, profile
from analyzer.distance import ks_binned, ks_binned_error, ks_kll, ks_kll_error

N_BASE, N_WINDOW = 200_000, 100_000


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "normal": rng.normal(0, 1, N_BASE),
        "lognormal": rng.lognormal(0, 1, N_BASE),
        "poisson": rng.poisson(4, N_BASE).astype(np.float64),
    }


@pytest.fixture(scope="module")
def base(data: dict[str, np.ndarray]) -> Profile:
    return profile(data)


def _windows() -> list[tuple[str, str, np.ndarray]]:
    rng = np.random.default_rng(12)
    ln = rng.lognormal(0, 1, N_WINDOW)
    p95 = np.quantile(ln, 0.95)
    stretched = np.where(ln > p95, p95 + (ln - p95) * 2, ln)
    return [
        ("normal", "same", rng.normal(0, 1, N_WINDOW)),
        ("normal", "shift 0.1 sd", rng.normal(0.1, 1, N_WINDOW)),
        ("normal", "shift 0.01 sd", rng.normal(0.01, 1, N_WINDOW)),
        ("normal", "variance x1.5", rng.normal(0, np.sqrt(1.5), N_WINDOW)),
        ("lognormal", "tail x2 above p95", stretched),
        ("poisson", "same", rng.poisson(4, N_WINDOW).astype(np.float64)),
        ("poisson", "rate 4.2", rng.poisson(4.2, N_WINDOW).astype(np.float64)),
    ]


@pytest.mark.parametrize(
    ("column", "case", "window"), _windows(), ids=[f"{c}-{k}" for c, k, _ in _windows()]
)
def test_ks_from_profiles_within_stated_error(
    data: dict[str, np.ndarray], base: Profile, column: str, case: str, window: np.ndarray
) -> None:
    exact = ks_2samp(data[column], window).statistic
    win = profile({column: window}, baseline=base)
    a, b = base.columns[column].numeric, win.columns[column].numeric

    binned = ks_binned(a, b)
    # Never above the exact statistic; below it by at most the largest bin mass (~0.1%).
    assert exact - ks_binned_error(a, b) - 1e-12 <= binned <= exact + 1e-12
    if column == "poisson":
        # Discrete: every value is an edge, so each bin holds one value and the CDFs are
        # compared at every jump: the binned statistic is the exact one.
        assert binned == pytest.approx(exact, abs=1e-12)
    else:
        frac = a.max_bin_fraction()
        assert frac is not None and frac < 0.005  # quantile-anchored bins of ~0.1% each

    sketched = ks_kll(a, b)
    assert abs(sketched - exact) <= ks_kll_error(a, b)  # 2 x 0.18% at k = 2048
