"""Drift inputs written by hand in tests."""

from __future__ import annotations

import numpy as np

from analyzer.drift.inputs import CategoryCounts


def category_counts(base: dict[str, int], window: dict[str, int]) -> CategoryCounts:
    """``CategoryCounts`` from two plain mappings of category to count (exact)."""
    labels = [*base, *(v for v in window if v not in base)]
    return CategoryCounts(
        labels,
        np.array([base.get(v, 0) for v in labels], dtype=np.int64),
        np.array([window.get(v, 0) for v in labels], dtype=np.int64),
        True,
    )
