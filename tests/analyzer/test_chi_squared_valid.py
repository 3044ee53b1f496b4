"""``categorical_drift_method: ChiSquared`` holds its false-alarm rate on clean high-cardinality
and skewed columns, and still flags a real shift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analyzer.baseline import profile
from analyzer.checks import evaluate
from analyzer.constraints import suggest_constraints
from analyzer.drift.chi_squared import MIN_EXPECTED, homogeneity, merge_groups
from tests.analyzer.counts import category_counts


def _shares(w: Any) -> Any:
    return w / w.sum()


SHAPES = {
    "zipf5000": _shares(1.0 / np.arange(1, 5001) ** 1.1),
    "uniform800": np.full(800, 1 / 800),
    "geometric": _shares(0.7 ** np.arange(40)),
    "four": np.array([0.5, 0.3, 0.17, 0.03]),
}
LABELS = {
    name: np.array([f"{name}-{i}" for i in range(p.size)], dtype=object)
    for name, p in SHAPES.items()
}
THRESHOLD = 0.1  # categorical_comparison_threshold: a violation when p < 0.1


def _data(rng: np.random.Generator, n: int, shift: bool = False) -> dict[str, Any]:
    out = {}
    for name, p in SHAPES.items():
        if shift and name == "zipf5000":
            p = p.copy()
            p[0] -= 0.03  # the top category loses 3 points to the second
            p[1] += 0.03
        out[name] = LABELS[name][rng.choice(p.size, n, p=p)]
    return out


def _flagged(seed: int, shift: bool = False) -> set[str]:
    rng = np.random.default_rng(seed)
    base = profile(_data(rng, 20_000))
    window = profile(_data(rng, 10_000, shift), baseline=base)
    ev = evaluate(
        base,
        suggest_constraints(base),
        window,
        job_overrides={"categorical_drift_method": "ChiSquared"},
    )
    return {
        v.feature_name for v in ev.violations if v.constraint_check_type == "baseline_drift_check"
    }


def test_chi_squared_false_alarm_rate_on_clean_columns() -> None:
    seeds = 120
    counts = dict.fromkeys(SHAPES, 0)
    for seed in range(seeds):
        for name in _flagged(seed):
            counts[name] += 1
    # At p < 0.1 a valid test flags about 12 of 120; 22 is 3 standard deviations above.
    assert max(counts.values()) <= 22, counts


def test_chi_squared_flags_a_real_shift() -> None:
    assert all("zipf5000" in _flagged(1000 + s, shift=True) for s in range(10))


def test_sparse_cells_are_pooled_into_one_other_cell() -> None:
    expected = np.array([100.0, 50.0, 3.0, 1.0, 0.5, 4.0, 20.0])
    g = merge_groups(expected)
    pooled = expected[g == 0]
    assert sorted(pooled) == [0.5, 1.0, 3.0, 4.0]
    assert np.bincount(g, weights=expected).min() >= MIN_EXPECTED
    r = homogeneity(category_counts({"a": 5000, "b": 5000}, {"a": 4, "b": 3}))
    assert np.isnan(r.pvalue) and r.dof == 0  # fewer than 10 expected in a 2-cell table: no test


@pytest.mark.parametrize("k", [5000])
def test_uniform_categories_too_sparse_to_test_get_no_pvalue(k: int) -> None:
    rng = np.random.default_rng(7)
    labels = [f"c{i}" for i in range(k)]
    b = dict(zip(labels, rng.multinomial(20_000, np.full(k, 1 / k)).tolist(), strict=True))
    w = dict(zip(labels, rng.multinomial(5_000, np.full(k, 1 / k)).tolist(), strict=True))
    r = homogeneity(category_counts(b, w))
    assert np.isnan(r.pvalue)  # every expected window count ~1: untestable, never flagged
