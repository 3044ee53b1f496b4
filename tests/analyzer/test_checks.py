"""Constraint checks of constraints.json on a window profile, with SageMaker's semantics."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest

from analyzer.baseline import profile
from analyzer.checks import Evaluation, MonitoringConfig, evaluate, evaluate_violations
from analyzer.constraints import suggest_constraints
from analyzer.errors import AnalyzerError
from analyzer.profile import Profile

N = 20_000


def _base_data(seed: int = 0, n: int = N) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(0, 1, n),
        "k": rng.poisson(3, n).astype(np.int64),
        "color": np.array(["red", "green", "blue", "gold"], dtype=object)[
            rng.choice(4, n, p=[0.5, 0.3, 0.17, 0.03])
        ],
    }


@pytest.fixture(scope="module")
def base() -> Profile:
    return profile(_base_data())


@pytest.fixture(scope="module")
def cons(base: Profile) -> dict[str, Any]:
    return suggest_constraints(base)


def _types(ev: Evaluation) -> set[tuple[str, str]]:
    return {(v.feature_name, v.constraint_check_type) for v in ev.violations}


def test_same_data_no_violations(base: Profile, cons: dict[str, Any]) -> None:
    window = profile(_base_data(), baseline=base)
    ev = evaluate(base, cons, window)
    assert ev.violations == []
    assert ev.violations_json() == {"violations": []}
    for r in ev.features.values():
        assert r.measures is not None and r.measures.distance == 0.0
        assert r.decision is not None and not r.decision.drift
    json.dumps(ev.to_dict(), allow_nan=False)  # JSON-ready, NaN as null


def test_constraints_default_to_suggested(base: Profile) -> None:
    window = profile(_base_data(), baseline=base)
    assert evaluate(base, None, window).violations == []


def test_drift_and_descriptions(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(1, 5_000)
    d["x"] = d["x"] + 1.0
    ev = evaluate(base, cons, profile(d, baseline=base))
    v = [v for v in ev.violations if v.feature_name == "x"]
    assert [x.constraint_check_type for x in v] == ["baseline_drift_check"]
    r = ev.features["x"]
    assert r.measures is not None
    dist = r.measures.distance
    # Robust (the suggested method) subtracts the KS critical value from linf_simple.
    n, m = r.measures.n, r.measures.m
    assert dist == pytest.approx(r.measures.linf_simple - 1.8 * math.sqrt((n + m) / (n * m)))
    assert v[0].description == f"Numerical distance: {dist!r} exceeds numerical threshold: 0.1"
    assert r.drift and not ev.features["k"].drift
    assert (
        evaluate_violations(base, cons, profile(d, baseline=base))
        == ev.violations_json()["violations"]
    )


def test_simple_vs_robust_on_a_small_window(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(2, 60)  # noise alone: linf_simple ~ 0.1-0.2 at 60 rows
    window = profile(d, baseline=base)
    robust = evaluate(base, cons, window)
    assert not any(v.constraint_check_type == "baseline_drift_check" for v in robust.violations)
    simple = copy.deepcopy(cons)
    simple["monitoring_config"]["distribution_constraints"]["comparison_method"] = "Simple"
    simple["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 0.05
    ev = evaluate(base, simple, window)
    assert ("x", "baseline_drift_check") in _types(ev)


def test_new_and_vanished_categories(base: Profile, cons: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    colors = np.array(["red", "green", "blue", "purple"], dtype=object)
    d = _base_data(3, 10_000)
    d["color"] = colors[rng.choice(4, 10_000, p=[0.5, 0.3, 0.05, 0.15])]  # gold gone, purple new
    ev = evaluate(base, cons, profile(d, baseline=base))
    r = ev.features["color"]
    assert r.measures is not None
    assert r.measures.new_share == pytest.approx(0.15, abs=0.02)
    assert r.measures.vanished_share == pytest.approx(0.03, abs=0.01)
    assert r.drift
    types = _types(ev)
    # purple: 15% outside the domain {blue, gold, green, red} > 0% + 10%.
    assert ("color", "categorical_values_check") in types
    assert ("color", "baseline_drift_check") in types  # blue 17% -> 5%
    desc = next(
        v.description
        for v in ev.violations
        if v.constraint_check_type == "categorical_values_check"
    )
    assert desc.startswith("Data value requirement is not met.")
    # Below the domain threshold: 5% new values are tolerated.
    d["color"] = np.where(rng.random(10_000) < 0.05, "purple", _base_data(4, 10_000)["color"])
    ev = evaluate(base, cons, profile(d, baseline=base))
    assert ("color", "categorical_values_check") not in _types(ev)


def test_chi_squared_method(base: Profile, cons: dict[str, Any]) -> None:
    c = copy.deepcopy(cons)
    dc = c["monitoring_config"]["distribution_constraints"]
    dc["categorical_drift_method"] = "ChiSquared"
    dc["categorical_comparison_threshold"] = 0.01
    rng = np.random.default_rng(5)
    d = _base_data(5, 5_000)
    d["color"] = np.array(["red", "green", "blue", "gold"], dtype=object)[
        rng.choice(4, 5_000, p=[0.45, 0.35, 0.17, 0.03])
    ]
    ev = evaluate(base, c, profile(d, baseline=base))
    r = ev.features["color"]
    assert r.measures is not None and r.measures.chi2_gof_pvalue is not None
    assert r.measures.chi2_gof_pvalue < 0.01
    assert r.measures.distance < 0.1  # the L-infinity distance alone would not flag it
    v = [v for v in ev.violations if v.feature_name == "color"]
    assert [x.constraint_check_type for x in v] == ["baseline_drift_check"]
    assert (
        "ChiSquared" in v[0].description and "below categorical threshold: 0.01" in v[0].description
    )
    # Undrifted: p is large, no violation.
    ev = evaluate(base, c, profile(_base_data(6, 5_000), baseline=base))
    assert ("color", "baseline_drift_check") not in _types(ev)
    # The same through a job-level override (the SDK's environment variable).
    ev = evaluate(
        base,
        cons,
        profile(d, baseline=base),
        job_overrides={
            "categorical_drift_method": "ChiSquared",
            "categorical_comparison_threshold": 0.01,
        },
    )
    assert ev.config.categorical_drift_method == "ChiSquared"
    assert ("color", "baseline_drift_check") in _types(ev)


def test_type_change(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(7, 1_000)
    k = d["k"].astype(str).astype(object)
    k[:3] = "abc"  # 0.3% not Integral
    d["k"] = k
    window = profile(d, baseline=base)
    ev = evaluate(base, cons, window)
    assert ("k", "data_type_check") not in _types(ev)  # a 0.3-point drop is within 0.1
    assert ev.features["k"].type_match == pytest.approx(0.997)
    assert ev.features["k"].window_type == "String"
    strict = copy.deepcopy(cons)
    strict["monitoring_config"]["datatype_check_threshold"] = 0.0
    ev = evaluate(base, strict, window)
    v = next(v for v in ev.violations if v.constraint_check_type == "data_type_check")
    assert v.feature_name == "k"
    assert v.description == (
        "Data type match requirement is not met. Expected data type: Integral, Expected match: "
        f"100.0%. Observed: Only {0.997 * 100!r}% of data is Integral."
    )
    # 20% strings breaks the default threshold too.
    k[:200] = "abc"
    ev = evaluate(base, cons, profile(d, baseline=base))
    assert ("k", "data_type_check") in _types(ev)
    # Fractional values in an Integral column are a mismatch; integers in a Fractional one are not.
    d2 = _base_data(8, 1_000)
    d2["k"] = d2["k"] + 0.5
    d2["x"] = np.round(d2["x"]).astype(np.int64)
    ev = evaluate(base, cons, profile(d2, baseline=base))
    assert ("k", "data_type_check") in _types(ev)
    assert ("x", "data_type_check") not in _types(ev)


def test_completeness_and_all_missing_column(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(9, 2_000)
    d["x"][:100] = np.nan
    ev = evaluate(base, cons, profile(d, baseline=base))
    v = next(v for v in ev.violations if v.constraint_check_type == "completeness_check")
    assert v.feature_name == "x"
    assert v.description == (
        "Data completeness requirement is not met. Expected completeness: 100.0%. "
        f"Observed: Only {0.95 * 100!r}% of data is present."
    )
    assert ev.features["x"].completeness == pytest.approx(0.95)
    assert ev.features["x"].measures is not None and ev.features["x"].measures.m == 1_900

    d["x"][:] = np.nan
    window = profile(d, baseline=base)
    # Without observed_columns an all-missing column is taken as absent.
    ev = evaluate(base, cons, window)
    assert [(v.feature_name, v.constraint_check_type) for v in ev.violations] == [
        ("x", "missing_column_check")
    ]
    # With the reader's column names it is present and 0% complete; nothing to test.
    ev = evaluate(base, cons, window, observed_columns=["x", "k", "color"])
    assert _types(ev) == {("x", "completeness_check")}
    r = ev.features["x"]
    assert r.completeness == 0.0 and r.measures is not None
    assert math.isnan(r.measures.pvalue)
    assert r.decision is not None and not r.decision.tested and not r.drift
    json.dumps(ev.to_dict(), allow_nan=False)


def test_missing_and_extra_columns(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(10, 1_000)
    del d["k"]
    d["extra"] = np.arange(1_000)
    ev = evaluate(base, cons, profile(d, baseline=base))
    assert _types(ev) == {("k", "missing_column_check"), ("extra", "extra_column_check")}
    assert "extra" not in ev.features
    ev = evaluate(base, cons, profile(d, baseline=base), observed_columns=["x", "color", "extra"])
    assert _types(ev) == {("k", "missing_column_check"), ("extra", "extra_column_check")}


def test_empty_window(base: Profile, cons: dict[str, Any]) -> None:
    window = Profile.empty(baseline=base)
    ev = evaluate(base, cons, window)
    assert ev.window_rows == 0 and ev.violations == []
    assert all(r.measures is None and r.decision is None for r in ev.features.values())
    json.dumps(ev.to_dict(), allow_nan=False)
    ev = evaluate(base, cons, window, observed_columns=[])
    assert {t for _, t in _types(ev)} == {"missing_column_check"} and len(ev.violations) == 3


def test_evaluate_constraints_disabled(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(11, 1_000)
    d["x"] = d["x"] + 3
    d["x"][:10] = np.nan
    del d["k"]
    d["extra"] = np.arange(1_000)
    off = copy.deepcopy(cons)
    off["monitoring_config"]["evaluate_constraints"] = "Disabled"
    ev = evaluate(base, off, profile(d, baseline=base))
    assert ev.violations == []
    assert ev.features["x"].drift  # measures and decisions still computed
    assert not ev.config.evaluate_constraints


def test_per_feature_overrides(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(12, 5_000)
    d["x"] = d["x"] + 0.5
    d["k"] = d["k"] + 1
    window = profile(d, baseline=base)
    assert {("x", "baseline_drift_check"), ("k", "baseline_drift_check")} <= _types(
        evaluate(base, cons, window)
    )
    c = copy.deepcopy(cons)
    feats = {f["name"]: f for f in c["features"]}
    feats["x"]["monitoringConfigOverrides"] = {"comparison_threshold": 0.9}  # flat
    feats["k"]["monitoringConfigOverrides"] = {
        "distribution_constraints": {"perform_comparison": "Disabled"}  # nested
    }
    ev = evaluate(base, c, window)
    assert ("x", "baseline_drift_check") not in _types(ev)
    assert ("k", "baseline_drift_check") not in _types(ev)
    feats["x"]["monitoringConfigOverrides"] = {"evaluate_constraints": "Disabled"}
    d["x"][:500] = np.nan
    ev = evaluate(base, c, profile(d, baseline=base))
    assert not any(v.feature_name == "x" for v in ev.violations)
    assert ev.features["x"].drift


def test_perform_comparison_disabled(base: Profile, cons: dict[str, Any]) -> None:
    d = _base_data(13, 2_000)
    d["x"] = d["x"] + 2
    c = copy.deepcopy(cons)
    c["monitoring_config"]["distribution_constraints"]["perform_comparison"] = "Disabled"
    ev = evaluate(base, c, profile(d, baseline=base))
    assert ev.violations == [] and ev.features["x"].drift


def test_monitoring_config_parsing() -> None:
    cfg = MonitoringConfig.from_constraints({})
    assert cfg == MonitoringConfig() and cfg.categorical_threshold == 0.1
    cfg = MonitoringConfig.from_constraints(
        {"monitoring_config": {"distribution_constraints": {"comparison_threshold": 0.2}}}
    )
    assert cfg.categorical_threshold == 0.2
    with pytest.raises(AnalyzerError):
        MonitoringConfig().updated({"evaluate_constraints": "maybe"})
    with pytest.raises(AnalyzerError):
        MonitoringConfig().updated({"comparison_method": "Fancy"})
    with pytest.raises(AnalyzerError):
        MonitoringConfig().updated({"categorical_drift_method": "KL"})


def test_baseline_without_bins_uses_sketches(cons: dict[str, Any]) -> None:
    """A baseline with no bins (SageMaker's statistics.json): KLL distance, no test."""
    base = profile(_base_data())
    col = base.columns["x"].numeric
    col.bins, col.edges = None, None
    d = _base_data(14, 5_000)
    d["x"] = d["x"] + 1.0
    ev = evaluate(base, cons, profile(d, baseline=base))
    m = ev.features["x"].measures
    assert m is not None and not m.exact and m.test is None
    assert m.linf_simple == pytest.approx(0.38, abs=0.03)  # Phi(0.5) - Phi(-0.5)
    assert ("x", "baseline_drift_check") in _types(ev)
    dec = ev.features["x"].decision
    assert dec is not None and not dec.tested and not dec.drift
    assert ev.features["k"].drift is False
    json.dumps(ev.to_dict(), allow_nan=False)
