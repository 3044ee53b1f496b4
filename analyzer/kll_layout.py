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

Reading a SageMaker-written baseline, which has only ``data``: the weighted items are turned
back into a DataSketches sketch by feeding each item ``2**h`` times (vectorised ``np.repeat``).
The result carries Deequ's error (its own k) plus ours. To keep that bounded for huge baselines,
when the total weight exceeds 2**22 the levels below ``s`` are thinned (every 2**(s-h)-th item of
the sorted level kept) and all weights divided by 2**s; ranks are normalised, so CDFs are
unchanged up to that compaction's error. Bins for the drift tests are then derived from this
sketch (edges at its quantiles, counts from its PMF scaled to ``num_present``) and marked
``exact: false``: a SageMaker baseline never had exact counts to give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

DATASKETCHES_C = 2.0 / 3.0
N_BUCKETS = 10
_MAX_REBUILD_WEIGHT = 1 << 22


def kll_buckets(sketch: kll_doubles_sketch, lo: float, hi: float) -> list[dict[str, float]]:
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


def kll_levels(sketch: kll_doubles_sketch) -> list[list[float]]:
    """The retained items grouped by level (weight 2**h), Deequ's ``data`` layout."""
    if sketch.is_empty():
        return []
    pairs = np.asarray(list(sketch), dtype=np.float64)  # retained items, not rows
    items, weights = pairs[:, 0], pairs[:, 1]
    levels = np.rint(np.log2(weights)).astype(np.int64)
    return [np.sort(items[levels == h]).tolist() for h in range(int(levels.max()) + 1)]


def sketch_json(sketch: kll_doubles_sketch, b64: str) -> dict[str, Any]:
    return {
        "parameters": {"c": DATASKETCHES_C, "k": int(sketch.k)},
        "data": kll_levels(sketch),
        "datasketches": b64,
    }


def kll_from_levels(data: Sequence[Sequence[float]], k: int) -> kll_doubles_sketch:
    """A DataSketches sketch of Deequ's weighted items (see the module docstring)."""
    levels = [np.sort(np.asarray(level, dtype=np.float64)) for level in data]
    total = sum(len(level) * 2**h for h, level in enumerate(levels))
    shift = (
        max(0, math.ceil(math.log2(total / _MAX_REBUILD_WEIGHT)))
        if total > _MAX_REBUILD_WEIGHT
        else 0
    )
    sketch = kll_doubles_sketch(k)
    for h, level in enumerate(levels):
        if level.size == 0:
            continue
        if h >= shift:
            sketch.update(np.repeat(level, 2 ** (h - shift)))
        else:
            sketch.update(level[:: 2 ** (shift - h)])
    return sketch


def kll_from_buckets(buckets: Sequence[dict[str, Any]], k: int) -> kll_doubles_sketch:
    """A coarse sketch from buckets alone (no ``data``): each bucket's count at its midpoint."""
    sketch = kll_doubles_sketch(k)
    for b in buckets:
        count = round(float(b["count"]))
        if count > 0:
            mid = (float(b["lower_bound"]) + float(b["upper_bound"])) / 2.0
            sketch.update(np.full(min(count, _MAX_REBUILD_WEIGHT), mid))
    return sketch


def derived_bins(
    sketch: kll_doubles_sketch, n_bins: int, num_present: int
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
