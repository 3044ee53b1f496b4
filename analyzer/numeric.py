"""The numeric summary of one column: exact moments, a KLL sketch and exact quantile-anchored bins.

Three parts, all mergeable, all updated with vectorised numpy over a chunk (no loop over rows).
Each chunk's finite values are sorted once (numpy's SIMD sort, ~8 ns a value): the sketch's
update is then about five times cheaper, min and max are the ends, and binning is one binary
search per edge instead of one per value. KLL's error bound holds for any input order.

* **Exact moments.** count, sum, min, max, and mean/M2 combined with Chan et al.'s parallel
  update (``M2 = M2a + M2b + delta**2 * na*nb/n``), which stays accurate for large N where the
  naive ``sum(x**2) - n*mean**2`` cancels. ``std_dev`` is the population standard deviation
  ``sqrt(M2/n)``, as Deequ (SageMaker's analyzer) reports it.
* **KLL sketch** (``analyzer.kll``: KLL with deterministic coins, in Apache DataSketches'
  ``kll_doubles_sketch`` format and queried through it), k = 2048 by default, the value
  SageMaker's Deequ uses. The same chunks in the same order give the same sketch, byte for byte. Its normalized rank error is 0.14% for a single rank query and 0.18%
  for a whole CDF/PMF (``kll_doubles_sketch.get_normalized_rank_error(2048, pmf)``, 99%
  confidence), so a KS distance read from two sketches is off by at most about 2 x 0.18% = 0.4%.
  That is fine for SageMaker's 0.1 distance threshold and for people, but it is larger than the
  KS critical value at a million rows (~0.2%), so the drift *tests* must not read the sketch.
* **Exact binned counts** for the drift tests. When a baseline is built, ``n_bins`` + 1 edges
  (default 1001) are taken once from the baseline's KLL quantiles at ranks 0, 1/n_bins, ..., 1
  (duplicates dropped, so a discrete column gets one bin per distinct quantile value). Every later
  profile *against that baseline* counts its values into the same bins (``np.searchsorted`` of
  the edges in the sorted chunk, then ``np.diff``): bin 0 is ``x < e0``, bin i is
  ``e[i-1] <= x < e[i]``, and the last bin is ``x >= e[-1]``, so values outside the baseline's
  range land in the two outer bins. The counts are integers that merge by addition, so
  chi-square, PSI, Jensen-Shannon and a KS statistic on the binned CDF are computed exactly on the
  binned data. The only approximation is the bin width: the KS statistic evaluated at the edges
  differs from the exact one by at most the largest single-bin mass (about 1/n_bins = 0.1% of the
  baseline, plus the KLL's placement error of the edge ranks; the exact largest mass of the
  baseline's bins is known and recorded as ``max_bin_fraction``).

* **Exact extremes and bin sums** for the Wasserstein distance (``analyzer.drift.wasserstein``):
  the ``TAIL`` (4,096) smallest and largest values, kept sorted and merged exactly (the extremes
  of a union are among the parts' extremes), and the sum of the values in each bin, which adds
  like the counts. A heavy tail's outer bins are wide; these make W1 exact there.

Values that are NaN are missing; +/-inf are counted in ``num_non_finite`` and kept out of the
moments, the sketch and the bins.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

from analyzer.errors import ProfileError
from analyzer.kll import KllSketch

DEFAULT_KLL_K = 2048
DEFAULT_BINS = 1000
TAIL = 4096
"""Exact values kept at each end: the wide outer bins of a heavy tail, for the Wasserstein distance."""
_NO_VALUES: npt.NDArray[np.float64] = np.empty(0, dtype=np.float64)


def _lowest(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The TAIL smallest of two sorted arrays, sorted."""
    if a.size >= TAIL:
        b = b[: int(np.searchsorted(b, a[-1], side="left"))]  # only what can enter
        if b.size == 0:
            return a
    both = np.concatenate([a, b[:TAIL]])
    both.sort(kind="stable")
    return both[:TAIL].copy()


def _highest(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The TAIL largest of two sorted arrays, sorted."""
    if a.size >= TAIL:
        b = b[int(np.searchsorted(b, a[0], side="right")) :]
        if b.size == 0:
            return a
    both = np.concatenate([a, b[-TAIL:]])
    both.sort(kind="stable")
    return both[-TAIL:].copy()


def kll_rank_error(k: int, *, pmf: bool = True) -> float:
    """The sketch's normalized rank error at 99% confidence (whole-CDF error when ``pmf``)."""
    return float(kll_doubles_sketch.get_normalized_rank_error(k, pmf))


def kll_to_b64(sketch: KllSketch) -> str:
    return base64.b64encode(sketch.serialize()).decode("ascii")


def kll_from_b64(text: str) -> KllSketch:
    return KllSketch.deserialize(base64.b64decode(text))


def quantile_edges(sketch: KllSketch, n_bins: int) -> npt.NDArray[np.float64]:
    """The bin edges anchored on a sketch: quantiles at ranks 0, 1/n_bins, ..., 1, deduplicated."""
    if sketch.is_empty():
        return np.empty(0, dtype=np.float64)
    ranks = np.linspace(0.0, 1.0, n_bins + 1)
    return np.unique(np.asarray(sketch.get_quantiles(ranks), dtype=np.float64))


def sorted_bin_sums(
    edges: npt.NDArray[np.float64], s: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Sums of the sorted finite values ``s`` in each of the len(edges)+1 bins."""
    return _sums(_bounds(edges, s), s)


def sorted_bin_counts(
    edges: npt.NDArray[np.float64], s: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Counts of the sorted finite values ``s`` in the len(edges)+1 bins of the module docstring."""
    bounds = _bounds(edges, s)
    return bounds[1:] - bounds[:-1]


def _bounds(edges: npt.NDArray[np.float64], s: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Where each bin starts and ends in ``s``: 0, the values < each edge, ``s.size``."""
    bounds = np.empty(edges.size + 2, dtype=np.int64)
    bounds[0] = 0
    bounds[1:-1] = np.searchsorted(s, edges, side="left")
    bounds[-1] = s.size
    return bounds


def _sums(bounds: npt.NDArray[np.int64], s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.zeros(bounds.size - 1)
    full = bounds[1:] > bounds[:-1]
    if s.size:
        out[full] = np.add.reduceat(s, bounds[:-1][full])
    return out


def _add_bins(summary: NumericSummary, s: npt.NDArray[np.float64]) -> None:
    """Count (and sum) the sorted finite ``s`` into the summary's bins: one binary search per
    edge shared by the counts and the sums."""
    assert summary.edges is not None and summary.bins is not None
    bounds = _bounds(summary.edges, s)
    summary.bins += bounds[1:] - bounds[:-1]
    if summary.bin_sums is not None:
        summary.bin_sums += _sums(bounds, s)


class NumericSummary:
    """Mergeable numeric statistics of one column (see the module docstring)."""

    __slots__ = (
        "bin_sums",
        "bins",
        "bins_exact",
        "bins_rank_error",
        "count",
        "edges",
        "high",
        "kll",
        "low",
        "m2",
        "max",
        "mean",
        "min",
        "non_finite",
        "sum",
    )

    def __init__(
        self, k: int = DEFAULT_KLL_K, edges: npt.NDArray[np.float64] | None = None
    ) -> None:
        self.count = 0
        self.sum = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.non_finite = 0
        self.kll = KllSketch(k)
        self.edges = edges
        self.bins: npt.NDArray[np.int64] | None = (
            None if edges is None else np.zeros(len(edges) + 1, np.int64)
        )
        self.bins_exact = True
        # The sum of the values in each bin (None when unknown: a SageMaker baseline): with the
        # counts it gives each bin's exact integral of the CDF (``analyzer.drift.wasserstein``).
        self.bin_sums: npt.NDArray[np.float64] | None = (
            None if edges is None else np.zeros(len(edges) + 1)
        )
        # How far the bins' CDF can be from the data's at any edge (0 for counted bins; a
        # sketch's rank error for bins rebuilt from a SageMaker baseline's KLL sketch).
        self.bins_rank_error = 0.0
        self.low = _NO_VALUES
        self.high = _NO_VALUES

    @property
    def tails_known(self) -> bool:
        """Whether ``low``/``high`` hold the exact TAIL smallest/largest values (or all of them)."""
        want = min(self.count, TAIL)
        return self.low.size == want and self.high.size == want

    @property
    def k(self) -> int:
        return int(self.kll.k)

    @property
    def std_dev(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    def update(self, values: npt.NDArray[np.float64]) -> None:
        """Add one chunk; NaN entries are skipped (missing), +/-inf counted as non-finite."""
        finite_mask = np.isfinite(values)
        n_finite = int(np.count_nonzero(finite_mask))
        if n_finite == values.size:
            x = values
        else:
            x = values[finite_mask]
            self.non_finite += int(np.count_nonzero(np.isinf(values)))
        if x.size == 0:
            return
        # Sorting first (SIMD, ~8 ns a value) makes the sketch's update ~5x cheaper, gives min
        # and max, and turns binning into one lookup per edge. KLL's error bound holds for any
        # input order, sorted included.
        s = np.sort(x)
        self._add_moments(s.size, float(s.sum()), float(s[0]), float(s[-1]), s)
        self.kll.update(s)
        if self.low.size == min(self.count - s.size, TAIL):  # tails still known
            self.low = _lowest(self.low, s)
            self.high = _highest(self.high, s)
        if self.edges is not None and self.bins is not None:
            _add_bins(self, s)

    def _add_moments(
        self, n: int, s: float, lo: float, hi: float, x: npt.NDArray[np.float64]
    ) -> None:
        mean_b = s / n
        d = x - mean_b
        m2_b = float(np.einsum("i,i->", d, d))  # not np.dot: BLAS is slow on tiny vectors here
        self._combine(n, s, mean_b, m2_b, lo, hi)

    def _combine(
        self, n_b: int, sum_b: float, mean_b: float, m2_b: float, lo: float, hi: float
    ) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta * delta * n_a * n_b / n
        self.count = n
        self.sum += sum_b
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    def start_bins(self, edges: npt.NDArray[np.float64]) -> None:
        """Fix the bin edges (a baseline's second pass); the counts start from zero."""
        self.edges = edges
        self.bins = np.zeros(len(edges) + 1, np.int64)
        self.bin_sums = np.zeros(len(edges) + 1)
        self.bins_exact = True

    def update_bins(self, values: npt.NDArray[np.float64]) -> None:
        """Count one chunk into the bins only (a baseline's second pass)."""
        if self.edges is None or self.bins is None:
            raise ProfileError("update_bins before start_bins")
        _add_bins(self, np.sort(values[np.isfinite(values)]))

    def max_bin_fraction(self) -> float | None:
        """The largest share of this column's values in one bin: the binned KS resolution."""
        if self.bins is None or self.count == 0:
            return None
        return float(self.bins.max() / self.bins.sum())

    def merge(self, other: NumericSummary) -> NumericSummary:
        """A new summary of both inputs; bins must share edges (profiles of one baseline)."""
        out = NumericSummary(self.k, self.edges)
        for src in (self, other):
            if src.count:
                out._combine(src.count, src.sum, src.mean, src.m2, src.min, src.max)
        out.non_finite = self.non_finite + other.non_finite
        out.kll = self.kll.copy()
        out.kll.merge(other.kll)
        out.bins, out.edges, out.bins_exact = _merge_bins(self, other)
        out.bins_rank_error = max(self.bins_rank_error, other.bins_rank_error)
        out.bin_sums = _merge_sums(self, other)
        if self.tails_known and other.tails_known:
            out.low = _lowest(self.low, other.low)
            out.high = _highest(self.high, other.high)
        return out

    def __getstate__(self) -> dict[str, Any]:
        # Pickling (process pools, Dask): the sketch goes as its own compact serialization.
        state = {name: getattr(self, name) for name in self.__slots__ if name != "kll"}
        state["kll"] = self.kll.serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self.kll = KllSketch.deserialize(state["kll"])

    def to_state(self, *, with_kll: bool = True) -> dict[str, Any]:
        state: dict[str, Any] = {
            "count": self.count,
            "sum": self.sum,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "num_non_finite": self.non_finite,
        }
        if with_kll:
            state["kll"] = kll_to_b64(self.kll)
        if self.count and self.tails_known:
            state["tails"] = {"low": _b64(self.low), "high": _b64(self.high)}
        if self.edges is not None and self.bins is not None:
            state["bins"] = {
                "edges": self.edges.tolist(),
                "counts": self.bins.tolist(),
                "exact": self.bins_exact,
                "max_bin_fraction": self.max_bin_fraction(),
            }
            if self.bins_rank_error:
                state["bins"]["rank_error"] = self.bins_rank_error
            if self.bin_sums is not None:
                state["bins"]["sums"] = self.bin_sums.tolist()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], kll: KllSketch | None = None) -> NumericSummary:
        sketch = kll if kll is not None else kll_from_b64(state["kll"])
        out = cls(int(sketch.k))
        out.kll = sketch
        out.count = int(state["count"])
        out.sum = float(state["sum"])
        out.mean = float(state["mean"])
        out.m2 = float(state["m2"])
        out.min = math.inf if state.get("min") is None else float(state["min"])
        out.max = -math.inf if state.get("max") is None else float(state["max"])
        out.non_finite = int(state.get("num_non_finite", 0))
        tails = state.get("tails")
        if tails is not None:
            out.low, out.high = _from_b64(tails["low"]), _from_b64(tails["high"])
        bins = state.get("bins")
        if bins is not None:
            out.edges = np.asarray(bins["edges"], dtype=np.float64)
            out.bins = np.asarray(bins["counts"], dtype=np.int64)
            out.bins_exact = bool(bins.get("exact", True))
            out.bins_rank_error = float(bins.get("rank_error", 0.0))
            sums = bins.get("sums")
            out.bin_sums = None if sums is None else np.asarray(sums, dtype=np.float64)
            if len(out.bins) != len(out.edges) + 1:
                raise ProfileError("bins: need exactly len(edges) + 1 counts")
        return out


def _b64(x: npt.NDArray[np.float64]) -> str:
    return base64.b64encode(x.astype("<f8").tobytes()).decode("ascii")


def _from_b64(text: str) -> npt.NDArray[np.float64]:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


def _merge_sums(a: NumericSummary, b: NumericSummary) -> npt.NDArray[np.float64] | None:
    """Bin sums of both; unknown if a side with bins has none."""
    sums = [x.bin_sums for x in (a, b) if x.edges is not None]
    known = [x for x in sums if x is not None]
    if not known or len(known) < len(sums):
        return None
    out: npt.NDArray[np.float64] = np.sum(known, axis=0)
    return out


def _merge_bins(
    a: NumericSummary, b: NumericSummary
) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.float64] | None, bool]:
    if a.edges is None and b.edges is None:
        return None, None, True
    if a.edges is None or b.edges is None:
        # A side without bins can join only if it holds no values at all.
        only = a if b.edges is None else b
        empty = b if b.edges is None else a
        if empty.count:
            raise ProfileError("cannot merge a binned profile with an unbinned one holding values")
        assert only.bins is not None
        return only.bins.copy(), only.edges, only.bins_exact
    if not np.array_equal(a.edges, b.edges):
        raise ProfileError(
            "cannot merge profiles whose bins have different edges (different baselines)"
        )
    assert a.bins is not None and b.bins is not None
    return a.bins + b.bins, a.edges, a.bins_exact and b.bins_exact
