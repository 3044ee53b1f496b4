"""Generated data with known distributions for the analyzer tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def make_data(n: int, seed: int = 0) -> dict[str, Any]:
    """Numeric (normal, lognormal, uniform, counts) with NaN holes, and categorical columns."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(10.0, 2.0, n)
    normal[rng.random(n) < 0.01] = np.nan
    cities = np.array([f"city{i}" for i in range(50)], dtype=object)
    p = 1.0 / np.arange(1, 51)
    cat = cities[rng.choice(50, n, p=p / p.sum())]
    small = np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, n)]
    small[rng.random(n) < 0.02] = None
    return {
        "normal": normal,
        "lognormal": rng.lognormal(0.0, 1.0, n),
        "uniform": rng.uniform(-5.0, 5.0, n),
        "count": rng.poisson(3.0, n).astype(np.int64),
        "city": cat,
        "small": small,
        "ids": np.array([f"id{i}" for i in rng.integers(0, 40_000, n)], dtype=object),
    }


@pytest.fixture(scope="session")
def data_50k() -> dict[str, Any]:
    return make_data(50_000)
