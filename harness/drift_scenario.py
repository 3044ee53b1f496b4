"""The drift scenario (docs/drift.md §5): 20 numeric and 5 categorical features, drift injected in 6.

Numeric: 6 normal, 5 lognormal, 5 uniform, 4 integer counts; ~1% missing in six of them.
Categorical: cardinalities 3, 10, 50, 1,000 and 10,000, Zipf-like (p_r proportional to 1/r).
Drifted in the window: ``normal_0`` mean +0.1 sd; ``normal_2`` (with missing values) variance
x1.5; ``lognormal_0`` upper tail stretched x2 above its 95th percentile; ``cat_50`` a new
category with 5% mass; ``cat_10`` category frequencies permuted (reversed); ``cat_1000`` its
~3.3% category (rank 4) vanishes. The other 19 features are drawn afresh from the baseline's
distributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

DRIFTED = {"normal_0", "normal_2", "lognormal_0", "cat_50", "cat_10", "cat_1000"}
WITH_MISSING = ("normal_1", "normal_2", "lognormal_1", "uniform_1", "count_1", "normal_5")
CARDINALITIES = (3, 10, 50, 1000, 10000)


def _zipf(k: int) -> np.ndarray:
    p: np.ndarray = 1.0 / np.arange(1, k + 1)
    return p / float(p.sum())


def _labels(k: int) -> np.ndarray:
    return np.array([f"v{i}" for i in range(k)], dtype=object)


def generate(n: int, seed: int, *, drift: bool) -> dict[str, Any]:
    """One side of the scenario: the baseline (``drift=False``) or a drifted window."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for i in range(6):
        mu, sd = 10.0 * i, 1.0 + i
        if drift and i == 0:
            out[f"normal_{i}"] = rng.normal(mu + 0.1 * sd, sd, n)
        elif drift and i == 2:
            out[f"normal_{i}"] = rng.normal(mu, sd * np.sqrt(1.5), n)
        else:
            out[f"normal_{i}"] = rng.normal(mu, sd, n)
    for i in range(5):
        x = rng.lognormal(0.5 * i, 0.5 + 0.25 * i, n)
        if drift and i == 0:
            p95 = np.quantile(x, 0.95)
            x = np.where(x > p95, p95 + 2.0 * (x - p95), x)
        out[f"lognormal_{i}"] = x
    for i in range(5):
        out[f"uniform_{i}"] = rng.uniform(-i, 1.0 + 3 * i, n)
    counts = {}
    for i in range(4):
        counts[f"count_{i}"] = rng.poisson([0.5, 3.0, 20.0, 200.0][i], n).astype(np.int64)
    for name in WITH_MISSING:
        hole = rng.random(n) < 0.01
        if name.startswith("count"):
            counts[name] = pa.array(counts[name], mask=hole)
        else:
            out[name] = np.where(hole, np.nan, out[name])
    out.update(counts)
    for k in CARDINALITIES:
        p = _zipf(k)
        labels = _labels(k)
        if drift and k == 10:
            p = p[::-1].copy()
        if drift and k == 1000:
            p = p.copy()
            p[3] = 0.0
            p /= p.sum()
        values = labels[rng.choice(k, n, p=p)]
        if drift and k == 50:
            values[rng.random(n) < 0.05] = "new"
        out[f"cat_{k}"] = values
    return out
