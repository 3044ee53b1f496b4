"""The KLL sketch's level merge: the same items in the same order as before, so the same sketch."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.kll import KllSketch, _merge_sorted
from analyzer.numeric import kll_rank_error


def _insert_merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference: the smaller inserted into the larger after its equal items."""
    big, small = (a, b) if a.size >= b.size else (b, a)
    return np.insert(big, np.searchsorted(big, small, side="right"), small)


@pytest.mark.parametrize("sizes", [(0, 5), (5, 0), (1, 1), (3000, 12000), (4096, 4096), (7, 2)])
def test_merge_sorted_places_equal_items_as_an_insertion_does(sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    # Few distinct values, signed zeros among them: ties everywhere, and -0.0 == 0.0 is a tie
    # whose order shows in the bits.
    pool = np.array([-1.5, -0.0, 0.0, 0.0, -0.0, 2.0, 3.25])
    a, b = (np.sort(rng.choice(pool, n), kind="stable") for n in sizes)
    got, want = _merge_sorted(a, b), _insert_merge(a, b)
    assert got.view(np.int64).tolist() == want.view(np.int64).tolist()


def test_sketch_of_small_updates_is_deterministic_and_within_its_error() -> None:
    rng = np.random.default_rng(3)
    chunks = [np.round(rng.normal(size=1500), 1) * rng.choice([-1.0, 1.0]) for _ in range(80)]
    one, two = KllSketch(256), KllSketch(256)
    for c in chunks:
        one.update(c)
        two.update(c)
    assert one.serialize() == two.serialize()
    data = np.sort(np.concatenate(chunks))
    points = np.quantile(data, np.linspace(0.01, 0.99, 25))
    exact = np.searchsorted(data, points, side="left") / data.size
    assert np.max(np.abs(np.asarray(one.get_cdf(points))[:-1] - exact)) <= kll_rank_error(256)
