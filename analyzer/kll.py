"""A KLL quantile sketch whose result depends only on its input, stored in DataSketches' format.

Apache DataSketches' ``kll_doubles_sketch`` flips a coin at every compaction from a generator
seeded by the clock, and its Python binding offers no seed: the same data give a different sketch
on every run, and so different bin edges, bin counts and serialized bytes in statistics.json.
This sketch is the same KLL algorithm (Karnin, Lang, Liberty 2016; DataSketches' level
capacities, k and m = 8) with two differences:

* **Coins from the state, not a clock.** A compaction keeps the even- or odd-indexed items of a
  sorted level; the choice is one bit of a SplitMix64 hash of (values seen, level, level size).
  The same updates and merges in the same order give the same sketch, byte for byte, in any
  process. The hash is fixed and independent of the values, so KLL's error analysis (which
  needs the coins independent of the data, not unpredictable) holds for any data not built to
  defeat this one hash.
* **Whole-level compaction.** When the items exceed the sketch's capacity, the lowest level at
  or above its own capacity is compacted (DataSketches' rule) all at once, however full (a chunk
  of 64 k sorted values goes up the levels in one halving each), vectorised with numpy. Each compaction at level h moves any rank by at most 2**h, and whole-level compaction
  does fewer compactions than one-at-a-time, so the error is at most DataSketches' for the same
  k (``kll_doubles_sketch.get_normalized_rank_error``: 0.18% at k = 2048 for a whole CDF, 99%).

Levels are sorted numpy arrays (level h holds items of weight 2**h); the odd item of a compacted
level stays behind, so the weights always add up to n exactly. ``serialize`` writes DataSketches'
own binary layout (readable by ``kll_doubles_sketch.deserialize``, as the ``datasketches`` string
of statistics.json always was) and queries (CDF, PMF, quantiles, ranks) go to that DataSketches
object, so they are computed exactly as before. ``deserialize`` reads any DataSketches KLL
doubles sketch, so older baselines load too.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

from analyzer.errors import ProfileError

Floats = npt.NDArray[np.float64]

M = 8
"""DataSketches' minimum level capacity."""
_FAMILY = 15
_FLAG_EMPTY = 1
_FLAG_LEVEL_ZERO_SORTED = 2
_FLAG_SINGLE = 4
_MASK = (1 << 64) - 1
_EMPTY: Floats = np.empty(0, dtype=np.float64)


def _cap_aux(k: int, depth: int) -> int:
    """DataSketches' ``int_cap_aux``: round(k * (2/3)**depth) in integers."""
    if depth > 30:
        half = depth // 2
        return _cap_aux(_cap_aux(k, half), depth - half)
    return int((((2 * k) << depth) // 3**depth + 1) >> 1)


@functools.lru_cache(maxsize=4096)
def level_capacity(k: int, num_levels: int, height: int) -> int:
    return max(M, _cap_aux(k, num_levels - height - 1))


@functools.lru_cache(maxsize=1024)
def total_capacity(k: int, num_levels: int) -> int:
    return sum(level_capacity(k, num_levels, h) for h in range(num_levels))


def _coin(x: int) -> int:
    """One bit of SplitMix64(x)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) & 1


def _merge_sorted(a: Floats, b: Floats) -> Floats:
    """The sorted union of two sorted arrays: the larger's items first among equal ones (-0.0
    and 0.0 included), as inserting the smaller at ``searchsorted(side="right")`` places them.
    A stable sort of the two concatenated is that same merge (timsort finds the two runs and
    merges them in O(n)) at a fifth of ``np.insert``'s cost for a few thousand items."""
    if a.size == 0:
        return b
    if b.size == 0:
        return a
    big, small = (a, b) if a.size >= b.size else (b, a)
    out: Floats = np.concatenate([big, small])
    out.sort(kind="stable")
    return out


class KllSketch:
    """A deterministic KLL doubles sketch (see the module docstring)."""

    __slots__ = ("_k", "_levels", "_max", "_min", "_n", "_view")

    def __init__(self, k: int = 200) -> None:
        if not M <= k <= 65535:
            raise ProfileError(f"kll k must be within {M}..65535, got {k}")
        self._k = k
        self._n = 0
        self._levels: list[Floats] = [_EMPTY]
        self._min = math.inf
        self._max = -math.inf
        self._view: kll_doubles_sketch | None = None

    @property
    def k(self) -> int:
        return self._k

    @property
    def n(self) -> int:
        return self._n

    @property
    def num_retained(self) -> int:
        return sum(level.size for level in self._levels)

    def is_empty(self) -> bool:
        return self._n == 0

    def levels(self) -> list[Floats]:
        """The retained items by level (level h has weight 2**h), each sorted."""
        return list(self._levels)

    def update(self, values: float | Sequence[float] | Floats) -> None:
        """Add values (NaN ignored, as DataSketches does); a sorted array costs no sort."""
        x = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if x.size and np.isnan(x).any():
            x = x[~np.isnan(x)]
        if x.size == 0:
            return
        if x.size > 1 and not (x[1:] >= x[:-1]).all():
            x = np.sort(x)
        self._levels[0] = _merge_sorted(self._levels[0], x)
        self._n += int(x.size)
        self._min = min(self._min, float(x[0]))
        self._max = max(self._max, float(x[-1]))
        self._compress()

    def merge(self, other: KllSketch) -> None:
        """Fold ``other`` in (in place, as DataSketches' merge)."""
        if other._n == 0:
            return
        while len(self._levels) < len(other._levels):
            self._levels.append(_EMPTY)
        for h, level in enumerate(other._levels):
            self._levels[h] = _merge_sorted(self._levels[h], level)
        self._n += other._n
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        self._compress()

    def copy(self) -> KllSketch:
        out = KllSketch(self._k)
        out._n, out._min, out._max = self._n, self._min, self._max
        out._levels = list(self._levels)  # levels are never modified in place
        return out

    def _compress(self) -> None:
        """DataSketches' rule: while the items exceed the total capacity, compact the lowest
        level at or above its own capacity (all of it at once)."""
        self._view = None
        while self.num_retained > total_capacity(self._k, len(self._levels)):
            num_levels = len(self._levels)
            h = next(
                h
                for h in range(num_levels)
                if self._levels[h].size >= level_capacity(self._k, num_levels, h)
            )
            if h + 1 == num_levels:
                self._levels.append(_EMPTY)
            level = self._levels[h]
            odd = level.size & 1
            bit = _coin((self._n << 12) ^ (h << 6) ^ level.size)
            up = np.ascontiguousarray(level[odd + bit :: 2])
            self._levels[h] = level[:odd].copy()
            self._levels[h + 1] = _merge_sorted(self._levels[h + 1], up)

    # --- DataSketches' binary layout ----------------------------------------------------------

    def serialize(self) -> bytes:
        k2 = struct.pack("<H", self._k)
        if self._n == 0:
            return bytes([2, 1, _FAMILY, _FLAG_EMPTY]) + k2 + bytes([M, 0])
        if self._n == 1:
            head = bytes([2, 2, _FAMILY, _FLAG_SINGLE]) + k2 + bytes([M, 0])
            return head + struct.pack("<d", self._min)
        levels = self._levels
        while len(levels) > 1 and levels[-1].size == 0:
            levels = levels[:-1]
        num_levels = len(levels)
        sizes = np.array([lv.size for lv in levels], dtype=np.int64)
        capacity = total_capacity(self._k, num_levels)
        retained = int(sizes.sum())
        if retained > capacity:  # never: _compress keeps the items within the capacity
            raise ProfileError("kll sketch holds more items than its capacity")
        offsets = capacity - retained + np.concatenate([[0], np.cumsum(sizes)[:-1]])
        head = bytes([5, 1, _FAMILY, _FLAG_LEVEL_ZERO_SORTED]) + k2 + bytes([M, 0])
        body = struct.pack("<QHBB", self._n, self._k, num_levels, 0)
        body += offsets.astype("<u4").tobytes()
        body += struct.pack("<dd", self._min, self._max)
        items = np.concatenate(levels).astype("<f8")
        return head + body + items.tobytes()

    @classmethod
    def deserialize(cls, data: bytes) -> KllSketch:
        """Any DataSketches KLL doubles sketch (or one of ours) as a ``KllSketch``."""
        if len(data) < 8 or data[2] != _FAMILY:
            raise ProfileError("not a KLL sketch")
        flags = data[3]
        (k,) = struct.unpack_from("<H", data, 4)
        out = cls(int(k))
        if flags & _FLAG_EMPTY:
            return out
        if flags & _FLAG_SINGLE:
            (v,) = struct.unpack_from("<d", data, 8)
            out.update(v)
            return out
        n, _min_k, num_levels, _ = struct.unpack_from("<QHBB", data, 8)
        offsets = np.frombuffer(data, "<u4", num_levels, 20).astype(np.int64)
        vmin, vmax = struct.unpack_from("<dd", data, 20 + 4 * num_levels)
        items = np.frombuffer(data, "<f8", offset=36 + 4 * num_levels).astype(np.float64)
        capacity = int(offsets[0]) + items.size
        bounds = np.concatenate([offsets, [capacity]]) - offsets[0]
        out._levels = [np.sort(items[bounds[h] : bounds[h + 1]]) for h in range(num_levels)]
        out._n, out._min, out._max = int(n), float(vmin), float(vmax)
        return out

    @classmethod
    def from_weighted_levels(cls, data: Sequence[Sequence[float]], k: int) -> KllSketch:
        """A sketch of items given level by level (level h of weight 2**h, Deequ's layout)."""
        out = cls(k)
        levels = [np.sort(np.asarray(level, dtype=np.float64)) for level in data]
        levels = [lv[~np.isnan(lv)] for lv in levels] or [_EMPTY]
        out._levels = levels
        out._n = sum(int(lv.size) << h for h, lv in enumerate(levels))
        nonempty = [lv for lv in levels if lv.size]
        if nonempty:
            out._min = min(float(lv[0]) for lv in nonempty)
            out._max = max(float(lv[-1]) for lv in nonempty)
        out._compress()
        return out

    # --- queries: DataSketches' own, on the same items ----------------------------------------

    def view(self) -> kll_doubles_sketch:
        """The DataSketches sketch of the same items (built once per state)."""
        if self._view is None:
            self._view = kll_doubles_sketch.deserialize(self.serialize())
        return self._view

    def get_cdf(self, points: Sequence[float], inclusive: bool = False) -> Any:
        return self.view().get_cdf(list(points), inclusive)

    def get_pmf(self, points: Sequence[float], inclusive: bool = False) -> Any:
        return self.view().get_pmf(list(points), inclusive)

    def get_quantiles(self, ranks: Sequence[float] | Floats, inclusive: bool = False) -> Any:
        return self.view().get_quantiles(np.asarray(ranks, dtype=np.float64), inclusive)

    def get_quantile(self, rank: float, inclusive: bool = False) -> float:
        return float(self.view().get_quantile(rank, inclusive))

    def get_rank(self, value: float, inclusive: bool = False) -> float:
        return float(self.view().get_rank(value, inclusive))

    def get_min_value(self) -> float:
        return self._min

    def get_max_value(self) -> float:
        return self._max

    def __iter__(self) -> Iterator[tuple[float, int]]:
        for h, level in enumerate(self._levels):
            for v in level.tolist():
                yield v, 1 << h

    def items_weights(self) -> tuple[Floats, npt.NDArray[np.int64]]:
        """Every retained item and its weight, as arrays (no Python loop)."""
        items = np.concatenate(self._levels) if self._levels else _EMPTY
        weights = np.concatenate(
            [np.full(lv.size, 1 << h, dtype=np.int64) for h, lv in enumerate(self._levels)]
        )
        return items, weights

    def __getstate__(self) -> bytes:
        return self.serialize()

    def __setstate__(self, state: bytes) -> None:
        other = KllSketch.deserialize(state)
        for name in self.__slots__:
            setattr(self, name, getattr(other, name))


__all__ = ["KllSketch", "level_capacity", "total_capacity"]
