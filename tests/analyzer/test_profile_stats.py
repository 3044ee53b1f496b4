"""Statistics on generated data: exact parts exact, sketch parts within their stated error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from analyzer import InferredType, Profile, ProfileConfig, profile
from analyzer.numeric import kll_rank_error

NUMERIC = ["normal", "lognormal", "uniform", "count"]


@pytest.fixture(scope="module")
def prof(data_50k: dict[str, Any]) -> Profile:
    return profile(data_50k)


def test_types_inferred(prof: Profile) -> None:
    assert prof.inferred_types() == {
        "normal": InferredType.FRACTIONAL,
        "lognormal": InferredType.FRACTIONAL,
        "uniform": InferredType.FRACTIONAL,
        "count": InferredType.INTEGRAL,
        "city": InferredType.STRING,
        "small": InferredType.STRING,
        "ids": InferredType.STRING,
    }


@pytest.mark.parametrize("name", NUMERIC)
def test_moments_exact(prof: Profile, data_50k: dict[str, Any], name: str) -> None:
    x = np.asarray(data_50k[name], dtype=np.float64)
    x = x[~np.isnan(x)]
    num = prof.columns[name].numeric
    assert num.count == x.size
    assert num.min == x.min() and num.max == x.max()
    assert num.sum == pytest.approx(x.sum(), rel=1e-12)
    assert num.mean == pytest.approx(x.mean(), rel=1e-12)
    assert num.std_dev == pytest.approx(x.std(), rel=1e-10)  # population std, as Deequ


def test_missing_counts_exact(prof: Profile, data_50k: dict[str, Any]) -> None:
    assert prof.item_count == 50_000
    nan = int(np.isnan(data_50k["normal"]).sum())
    assert prof.columns["normal"].type_counts[0] == nan
    assert prof.columns["normal"].numeric.count == 50_000 - nan
    none = sum(v is None for v in data_50k["small"])
    assert prof.columns["small"].type_counts[0] == none
    assert prof.columns["lognormal"].type_counts[0] == 0


@pytest.mark.parametrize("name", NUMERIC)
def test_quantiles_within_kll_error(prof: Profile, data_50k: dict[str, Any], name: str) -> None:
    x = np.sort(np.asarray(data_50k[name], dtype=np.float64))
    x = x[~np.isnan(x)]
    num = prof.columns[name].numeric
    eps = kll_rank_error(num.k, pmf=False)
    for q in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        v = num.kll.get_quantile(q)
        # The true rank of the returned value must lie within eps of q.
        lo = np.searchsorted(x, v, side="left") / x.size
        hi = np.searchsorted(x, v, side="right") / x.size
        assert lo - eps <= q <= hi + eps, (q, lo, hi, eps)


def test_bins_exact_counts(prof: Profile, data_50k: dict[str, Any]) -> None:
    num = prof.columns["uniform"].numeric
    assert num.edges is not None and num.bins is not None
    assert num.bins.sum() == num.count
    expected = np.bincount(
        np.searchsorted(num.edges, data_50k["uniform"], side="right"), minlength=len(num.bins)
    )
    assert np.array_equal(num.bins, expected)
    # Quantile-anchored: every bin holds about 1/n_bins of the baseline.
    assert num.max_bin_fraction() is not None
    assert num.max_bin_fraction() < 1 / 1000 + 2 * kll_rank_error(num.k, pmf=False)
    count = prof.columns["count"].numeric  # discrete: one bin per distinct value
    assert count.edges is not None and len(count.edges) <= 20


def test_category_counts_exact(prof: Profile, data_50k: dict[str, Any]) -> None:
    values, counts = np.unique(data_50k["city"].astype(str), return_counts=True)
    strings = prof.columns["city"].strings
    assert strings is not None
    assert strings.counts_dict() == dict(zip(values.tolist(), counts.tolist(), strict=True))
    assert strings.distinct_count == 50 and strings.distinct_exact


def test_distinct_count_beyond_cap_within_cpc_error(data_50k: dict[str, Any]) -> None:
    prof = profile({"ids": data_50k["ids"]}, config=ProfileConfig(category_cap=1000))
    s = prof.columns["ids"].strings
    assert s is not None and not s.distinct_exact
    true = len(set(data_50k["ids"].tolist()))
    assert s.cpc.get_lower_bound(3) <= true <= s.cpc.get_upper_bound(3)
    assert abs(s.distinct_count - true) / true < 0.05
    assert len(s.counts_dict()) == 1000
    assert s.count == 50_000  # kept counts + other mass account for every value


def test_string_numbers_are_integral_or_fractional() -> None:
    prof = profile(
        {
            "ints": pa.array(["1", "-2", "+3", None, "007"]),
            "floats": pa.array(["1.5", "2", ".5", "1e3", None]),
            "mixed": pa.array(["1", "2", "x", None, "4"]),
            "nan_text": pa.array(["1", "nan", "2", "3", "4"]),
            "empty": pa.array([None, None, None, None, None], pa.string()),
        }
    )
    t = prof.inferred_types()
    assert t["ints"] is InferredType.INTEGRAL
    assert t["floats"] is InferredType.FRACTIONAL
    assert t["mixed"] is InferredType.STRING
    assert t["nan_text"] is InferredType.STRING  # "nan" is text, never silently a number
    assert t["empty"] is InferredType.UNKNOWN
    assert prof.columns["floats"].numeric.sum == pytest.approx(1.5 + 2 + 0.5 + 1000)


def test_mixed_type_threshold_keeps_numbers_and_counts_mismatches() -> None:
    values = pa.array([str(i) for i in range(99)] + ["oops"])
    prof = profile({"x": values}, config=ProfileConfig(mixed_type_threshold=0.05))
    assert prof.inferred_type("x") is InferredType.INTEGRAL
    col = prof.columns["x"]
    assert col.type_counts.tolist() == [0, 99, 0, 1]
    assert col.numeric.count == 99  # "oops" is a mismatch, not a value


def test_type_override_and_inf() -> None:
    prof = profile(
        {"code": np.array([1, 2, 2, 3]), "f": np.array([1.0, np.inf, 2.0, np.nan])},
        config=ProfileConfig(type_overrides={"code": InferredType.STRING}),
    )
    assert prof.inferred_type("code") is InferredType.STRING
    strings = prof.columns["code"].strings
    assert strings is not None and strings.counts_dict() == {"2": 2, "1": 1, "3": 1}
    f = prof.columns["f"].numeric
    assert (f.count, f.non_finite, f.max) == (2, 1, 2.0)


def test_late_string_column_is_recounted_in_second_pass() -> None:
    chunks = [{"v": pa.array(["1", "2", "3"])}, {"v": pa.array(["x", "1", None])}]
    prof = profile(chunks)
    assert prof.inferred_type("v") is InferredType.STRING
    col = prof.columns["v"]
    assert col.text_values_missed == 0
    assert col.strings is not None and col.strings.counts_dict() == {"1": 2, "2": 1, "3": 1, "x": 1}


def test_category_counts_of_many_small_updates_equal_one_count_of_all() -> None:
    """Chunks that repeat, add and (past the cap) evict values: the running counts are the
    whole column's, and within the cap exactly ``Counter`` of the values."""
    from collections import Counter

    from analyzer.categorical import CategoricalSummary

    rng = np.random.default_rng(7)
    values = [f"v{i}" for i in rng.zipf(1.3, 20_000) % 3_000]
    exact = CategoricalSummary(cap=10_000)
    capped, capped_whole = CategoricalSummary(cap=50), CategoricalSummary(cap=50)
    for i in range(0, len(values), 700):
        exact.update(pa.array(values[i : i + 700]))
    assert exact.counts_dict() == dict(Counter(values))
    assert exact.distinct_exact
    capped_whole.update(pa.array(values))
    for i in range(0, len(values), 700):
        capped.update(pa.array(values[i : i + 700]))
    assert capped.count == len(values)
    assert len(capped.counts_dict()) == 50 and not capped.distinct_exact


@pytest.mark.parametrize("cap", [10_000, 40])
def test_distinct_sketch_fed_new_values_only_is_the_sketch_of_every_value(cap: int) -> None:
    """The CPC sketch is fed only values new to the table; it must be, byte for byte, the
    sketch fed every chunk's distinct values (also past the cap, where evicted values return)."""
    import pyarrow.compute as pc
    from datasketches import cpc_sketch

    from analyzer.categorical import CategoricalSummary

    rng = np.random.default_rng(11)
    values = [f"v{i}" for i in rng.zipf(1.2, 30_000) % 5_000]
    summary = CategoricalSummary(cap=cap)
    every = cpc_sketch(summary.lg_k)
    for i in range(0, len(values), 900):
        chunk = pa.array(values[i : i + 900])
        summary.update(chunk)
        for v in pc.value_counts(chunk).field("values").to_pylist():
            every.update(v)
    assert summary.cpc.serialize() == every.serialize()


@pytest.mark.parametrize("first", ["2.5", "7"])
def test_integral_literals_are_counted_whatever_the_first_values(first: str) -> None:
    """Integer literals ("3", "-0") beside integer-valued ones that are not ("3.0", "1e2") and
    fractions, the first 64 values all fractions or all integers: each literal counted as such."""
    from analyzer.inference import FRACTIONAL, INTEGRAL, classify

    tail = ["3", "3.0", "1e2", "-0", "0.25", "12", "4E1", "+5"] * 10
    cls = classify(pa.array([first] * 64 + tail), want_text=False)
    integral = (64 if first == "7" else 0) + 4 * 10
    assert cls.counts[INTEGRAL] == integral
    assert cls.counts[FRACTIONAL] == 64 + len(tail) - integral
