"""The inputs every drift measure reads: aligned bin counts or aligned category counts.

* ``binned(a, b)``: the two numeric summaries' counts in the baseline's quantile-anchored bins
  (``analyzer.numeric``). Both must share edges, which holds for a window profiled against its
  baseline. Counts are exact integers, so everything computed from them is exact *on the binned
  data*; the bin width is the only approximation and each measure states what it costs.
* ``categories(a, b)``: the counts of the union of both summaries' categories, baseline first in
  the baseline's order and then the window's new categories. A category a side never saw counts
  0 there. Values beyond a summary's cap (``other_count``) are not categories and are left out;
  ``CategoryCounts.exact`` says whether that happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzer.categorical import CategoricalSummary
from analyzer.errors import ProfileError
from analyzer.numeric import NumericSummary

Counts = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BinnedCounts:
    """Two distributions' counts in the same bins (``len(edges) + 1`` of them)."""

    edges: Floats
    base: Counts
    window: Counts
    base_min: float = math.nan
    base_max: float = math.nan
    window_min: float = math.nan
    window_max: float = math.nan
    """Exact extremes of the present values (NaN when unknown)."""

    @property
    def n(self) -> int:
        return int(self.base.sum())

    @property
    def m(self) -> int:
        return int(self.window.sum())


@dataclass(frozen=True)
class CategoryCounts:
    """Two distributions' counts over the union of their categories."""

    labels: list[str]
    base: Counts
    window: Counts
    exact: bool
    """False when a side exceeded its category cap (its ``other_count`` is left out)."""

    @property
    def n(self) -> int:
        return int(self.base.sum())

    @property
    def m(self) -> int:
        return int(self.window.sum())


def binned(a: NumericSummary, b: NumericSummary) -> BinnedCounts:
    """The baseline ``a`` and window ``b`` bin counts; the edges must be the same."""
    if a.bins is None or b.bins is None or a.edges is None or b.edges is None:
        raise ProfileError("both summaries need bins (profile the window against the baseline)")
    if not np.array_equal(a.edges, b.edges):
        raise ProfileError("the summaries' bins have different edges")
    return BinnedCounts(a.edges, a.bins, b.bins, a.min, a.max, b.min, b.max)


def categories(a: CategoricalSummary | None, b: CategoricalSummary | None) -> CategoryCounts:
    """Baseline ``a`` and window ``b`` counts over the union of their categories."""
    ca = a.counts_dict() if a is not None else {}
    cb = b.counts_dict() if b is not None else {}
    labels = [*ca, *(v for v in cb if v not in ca)]
    base = np.array([ca.get(v, 0) for v in labels], dtype=np.int64)
    window = np.array([cb.get(v, 0) for v in labels], dtype=np.int64)
    exact = (a is None or a.other_count == 0) and (b is None or b.other_count == 0)
    return CategoryCounts(labels, base, window, exact)
