"""Monoid laws: merge(profile(a), profile(b)) == profile(a + b); chunked == one-shot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analyzer import Profile, ProfileError, profile
from analyzer.numeric import kll_rank_error
from analyzer.statistics import profile_from_statistics, profile_to_statistics

from .conftest import make_data


def assert_same(a: Profile, b: Profile, *, sketch_exact: bool) -> None:
    assert a.item_count == b.item_count
    assert list(a.columns) == list(b.columns)
    for name, ca in a.columns.items():
        cb = b.columns[name]
        assert ca.type_counts.tolist() == cb.type_counts.tolist(), name
        na, nb = ca.numeric, cb.numeric
        assert na.count == nb.count and na.non_finite == nb.non_finite
        if na.count:
            assert (na.min, na.max) == (nb.min, nb.max)
            assert na.sum == pytest.approx(nb.sum, rel=1e-9, abs=1e-9)
            assert na.mean == pytest.approx(nb.mean, rel=1e-9, abs=1e-9)
            assert na.m2 == pytest.approx(nb.m2, rel=1e-7, abs=1e-6)
            assert na.kll.n == nb.kll.n
            eps = kll_rank_error(na.k)
            for q in (0.1, 0.5, 0.9):
                if sketch_exact:
                    assert na.kll.get_quantile(q) == nb.kll.get_quantile(q)
                else:
                    # The quantile's rank in the other sketch is within both errors (ties:
                    # q lies between the exclusive and the inclusive rank of the value).
                    v = na.kll.get_quantile(q)
                    lo, hi = nb.kll.get_rank(v, False), nb.kll.get_rank(v, True)
                    assert lo - 2 * eps <= q <= hi + 2 * eps
        if na.bins is not None or nb.bins is not None:
            assert na.bins is not None and nb.bins is not None
            assert np.array_equal(na.bins, nb.bins), name
        if ca.strings is not None or cb.strings is not None:
            assert ca.strings is not None and cb.strings is not None
            sa, sb = ca.strings, cb.strings
            assert sa.count == sb.count
            if sa.distinct_exact and sb.distinct_exact:
                assert sa.counts_dict() == sb.counts_dict()
                assert sa.distinct_count == sb.distinct_count
                assert sa.other_count == sb.other_count == 0
            else:  # beyond the cap: kept counts are lower bounds, short by at most other_count
                da, db = sa.counts_dict(), sb.counts_dict()
                slack = max(sa.other_count, sb.other_count)
                assert all(abs(da[k] - db[k]) <= slack for k in da.keys() & db.keys())
                assert sa.distinct_count == pytest.approx(sb.distinct_count, rel=0.05)


@pytest.fixture(scope="module")
def baseline() -> Profile:
    rng = np.random.default_rng(7)
    return profile(
        {
            "f": rng.normal(0, 100, 5000),
            "i": rng.integers(-50, 50, 5000),
            "s": np.array(list("abcdef"), dtype=object)[rng.integers(0, 6, 5000)],
        }
    )


floats = st.lists(
    st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan")), st.just(float("inf"))),
    max_size=60,
)
ints = st.lists(st.integers(-100, 100), max_size=60)
words = st.lists(st.one_of(st.sampled_from(["a", "b", "c", "zz", "é", ""]), st.none()), max_size=60)


def _chunk(f: list[float], i: list[int], s: list[str | None]) -> dict[str, Any]:
    n = min(len(f), len(i), len(s))
    return {
        "f": np.asarray(f[:n], dtype=np.float64),
        "i": np.asarray(i[:n], dtype=np.int64),
        "s": pa.array(s[:n], pa.string()),
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fa=floats, ia=ints, sa=words, fb=floats, ib=ints, sb=words)
# 0 .. 5e-324 is too narrow for ten distinct bucket bounds
@example(fa=[], ia=[], sa=[], fb=[0.0, 5e-324], ib=[0, 0], sb=["a", "a"])
def test_merge_equals_union_against_baseline(
    baseline: Profile,
    fa: list[float],
    ia: list[int],
    sa: list[str | None],
    fb: list[float],
    ib: list[int],
    sb: list[str | None],
) -> None:
    a, b = _chunk(fa, ia, sa), _chunk(fb, ib, sb)
    union = {k: np.concatenate([np.asarray(a[k]), np.asarray(b[k])]) for k in ("f", "i")}
    union["s"] = pa.concat_arrays([a["s"], b["s"]])
    merged = profile(a, baseline=baseline).merge(profile(b, baseline=baseline))
    # Small inputs stay below k, where KLL is exact: sketches must agree exactly too.
    assert_same(merged, profile(union, baseline=baseline), sketch_exact=True)
    # And through JSON.
    again = profile_from_statistics(profile_to_statistics(profile(a, baseline=baseline))).merge(
        profile_from_statistics(profile_to_statistics(profile(b, baseline=baseline)))
    )
    assert_same(again, profile(union, baseline=baseline), sketch_exact=True)


@settings(max_examples=40, deadline=None)
@given(fa=floats, ia=ints, fb=floats, ib=ints)
def test_merge_equals_union_untyped(
    fa: list[float], ia: list[int], fb: list[float], ib: list[int]
) -> None:
    na, nb = min(len(fa), len(ia)), min(len(fb), len(ib))
    a = {"f": np.asarray(fa[:na], np.float64), "i": np.asarray(ia[:na], np.int64)}
    b = {"f": np.asarray(fb[:nb], np.float64), "i": np.asarray(ib[:nb], np.int64)}
    pa_, pb = Profile.empty(), Profile.empty()
    pa_.update(a)
    pb.update(b)
    pu = Profile.empty()
    pu.update(a)
    pu.update(b)
    assert_same(pa_.merge(pb), pu, sketch_exact=True)


def test_merge_large_within_sketch_error(baseline: Profile) -> None:
    data = make_data(60_000, seed=3)
    half = {k: v[:30_000] for k, v in data.items()}
    rest = {k: v[30_000:] for k, v in data.items()}
    one = profile(data)
    merged = profile(half, baseline=one).merge(profile(rest, baseline=one))
    assert_same(merged, profile(data, baseline=one), sketch_exact=False)


def test_chunked_equals_one_shot() -> None:
    data = make_data(40_000, seed=5)
    chunks = [{k: v[i : i + 7_000] for k, v in data.items()} for i in range(0, 40_000, 7_000)]
    one = profile(data)
    chunked = profile(chunks)
    for name in one.columns:
        a, b = one.columns[name], chunked.columns[name]
        assert a.type_counts.tolist() == b.type_counts.tolist()
        assert a.numeric.mean == pytest.approx(b.numeric.mean, rel=1e-12, abs=1e-12)
        assert a.numeric.std_dev == pytest.approx(b.numeric.std_dev, rel=1e-9, nan_ok=True)
        if a.strings is not None and a.strings.distinct_exact:  # "ids" passes the cap
            assert b.strings is not None and a.strings.counts_dict() == b.strings.counts_dict()
    # Against one baseline, the exact bins of chunked and one-shot windows are identical.
    assert_same(profile(chunks, baseline=one), profile(data, baseline=one), sketch_exact=False)


def test_missing_and_new_columns_count_as_missing() -> None:
    p = profile([{"a": np.array([1.0, 2.0])}, {"b": np.array(["x"], dtype=object)}])
    assert p.columns["a"].type_counts.tolist() == [1, 0, 2, 0]
    assert p.columns["b"].type_counts.tolist() == [2, 0, 0, 1]


def test_merge_refuses_different_baselines(baseline: Profile) -> None:
    other = profile(
        {"f": np.arange(100.0), "i": np.arange(100), "s": np.array(["a"] * 100, dtype=object)}
    )
    a = profile({"f": np.array([1.0])}, baseline=baseline)
    b = profile({"f": np.array([1.0])}, baseline=other)
    with pytest.raises(ProfileError, match="different edges"):
        a.merge(b)
