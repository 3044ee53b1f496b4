"""KLL sketches in SageMaker's JSON layout: the human buckets, and Deequ's level-by-level items.

SageMaker's statistics.json (written by Deequ) describes a numeric distribution as
``{"kll": {"buckets": [...], "sketch": {"parameters": {"c": c, "k": k}, "data": [[...], ...]}}}``:

* ``buckets``: 10 equal-width buckets between the global min and max. Deequ counts
  ``rank(upper) - rank(lower)``, so a bucket holds ``lower < x <= upper``; we put the minimum in
  the first bucket, so the ten counts add up to ``num_present`` (a column with a single distinct
  value gets one bucket). Counts are read from the KLL
  sketch (within its rank error), rounded to integers. They are for people and SageMaker tooling.
* ``data``: the compactor items level by level; an item at level h stands for 2**h values.

We write ``data`` from our DataSketches sketch the same way (each retained item's weight is a
power of two, so its level is log2(weight)) and add the exact binary sketch, base64, as
``sketch.datasketches``. ``c`` is DataSketches' compaction factor 2/3 (Deequ's own is 0.64).

Reading a SageMaker-written baseline, which has only ``data``: the weighted items become the
levels of an ``analyzer.kll.KllSketch`` as they are (compacted deterministically if they exceed
its capacity). The result carries Deequ's error (its own k) plus that compaction's. Bins for the
drift tests are then derived from this
sketch (edges at its quantiles, counts from its PMF scaled to ``num_present``) and marked
``exact: false``: a SageMaker baseline never had exact counts to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.kll import KllSketch

DATASKETCHES_C = 2.0 / 3.0
N_BUCKETS = 10
_MAX_REBUILD_WEIGHT = 1 << 22


def kll_buckets(sketch: KllSketch, lo: float, hi: float) -> list[dict[str, float]]:
    """SageMaker's 10 equal-width buckets between ``lo`` and ``hi`` from a sketch."""
    n = int(sketch.n)
    if n == 0:
        return []
    bounds = np.linspace(lo, hi, N_BUCKETS + 1)
    if not (np.diff(bounds) > 0).all():  # one value, or a range too narrow for 10 floats
        return [{"lower_bound": lo, "upper_bound": hi, "count": n}]
    inner = np.asarray(sketch.get_cdf(bounds[1:-1].tolist(), True), dtype=np.float64)[
        : N_BUCKETS - 1
    ]
    cdf = np.concatenate([[0.0], inner, [1.0]])
    counts = np.rint(np.diff(cdf) * n).astype(np.int64)
    counts[int(np.argmax(counts))] += n - int(counts.sum())
    return [
        {
            "lower_bound": float(bounds[i]),
            "upper_bound": float(bounds[i + 1]),
            "count": int(counts[i]),
        }
        for i in range(N_BUCKETS)
    ]


def kll_levels(sketch: KllSketch) -> list[list[float]]:
    """The retained items grouped by level (weight 2**h), Deequ's ``data`` layout."""
    if sketch.is_empty():
        return []
    levels = sketch.levels()
    while levels and levels[-1].size == 0:
        levels.pop()
    return [level.tolist() for level in levels]


def sketch_json(sketch: KllSketch, b64: str) -> dict[str, Any]:
    return {
        "parameters": {"c": DATASKETCHES_C, "k": int(sketch.k)},
        "data": kll_levels(sketch),
        "datasketches": b64,
    }


def kll_from_levels(data: Sequence[Sequence[float]], k: int) -> KllSketch:
    """A sketch of Deequ's weighted items (see the module docstring)."""
    return KllSketch.from_weighted_levels(data, k)


def kll_from_buckets(buckets: Sequence[dict[str, Any]], k: int) -> KllSketch:
    """A coarse sketch from buckets alone (no ``data``): each bucket's count at its midpoint."""
    sketch = KllSketch(k)
    for b in buckets:
        count = round(float(b["count"]))
        if count > 0:
            mid = (float(b["lower_bound"]) + float(b["upper_bound"])) / 2.0
            sketch.update(np.full(min(count, _MAX_REBUILD_WEIGHT), mid))
    return sketch


def derived_bins(
    sketch: KllSketch, n_bins: int, num_present: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Edges at a sketch's quantiles and counts from its PMF (approximate, not exact)."""
    from analyzer.numeric import quantile_edges

    edges = quantile_edges(sketch, n_bins)
    if edges.size == 0:
        return edges, np.zeros(1, np.int64)
    # Counts from the rounded CDF, not rounded bin by bin: the cumulative counts are then within
    # half a value of the sketch's CDF at every edge.
    cdf = np.asarray(sketch.get_cdf(edges.tolist(), False), dtype=np.float64)
    cum = np.rint(np.clip(cdf, 0.0, 1.0) * num_present).astype(np.int64)
    cum[-1] = num_present
    cum = np.maximum.accumulate(cum)
    counts = np.diff(cum, prepend=0)
    return edges, counts
