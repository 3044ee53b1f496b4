"""analyzer.bias.constraints: allowed ranges, the direction rule, and violations of windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analyzer.bias import BiasError, Facet, check, compute, suggest_constraints, violations_file


def doc(metrics: list[dict[str, Any]], facet_value: str = "F") -> dict[str, Any]:
    return {
        "version": "1.0",
        "post_training_bias_metrics": {
            "label": "y",
            "facets": {"sex": [{"value_or_threshold": facet_value, "metrics": metrics}]},
        },
    }


def metric(name: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": name, "value": value, **extra}


def names(violations: list[dict[str, str]]) -> list[str]:
    return sorted(v["metric_name"] for v in violations)


def test_clarify_rule_on_a_plain_analysis_json() -> None:
    # No allowed_range: Clarify's literal rule, worse = farther from 0 (DI: from 1).
    baseline = doc([metric("DPPL", 0.2), metric("DI", 0.8), metric("TE", None)])
    assert check(doc([metric("DPPL", 0.1), metric("DI", 1.1)]), baseline) == []
    assert (
        check(doc([metric("DPPL", -0.2), metric("DI", 1.2)]), baseline) == []
    )  # as bad, not worse
    v = check(doc([metric("DPPL", -0.3), metric("DI", 0.7), metric("TE", 5.0)]), baseline)
    assert names(v) == ["DI", "DPPL"]
    first = v[0]
    assert set(first) == {
        "facet",
        "facet_value",
        "metric_name",
        "constraint_check_type",
        "description",
    }
    assert first["facet"] == "sex" and first["facet_value"] == "F"
    assert first["constraint_check_type"] == "bias_drift_check"
    assert first["description"].startswith("Value ")
    assert "does not meet the constraint requirement" in first["description"]
    assert violations_file(v) == {"version": "1.0", "violations": v}


def test_suggested_ranges() -> None:
    base = doc(
        [
            metric("DPPL", 0.2, standard_deviation=0.01),  # margin max(0.03, 0.02, 0.05) = 0.05
            metric("DI", 0.8, standard_deviation=0.05),  # margin max(0.15, 0.02, 0.05) = 0.15
            metric("RD", -0.5),  # no deviation: margin max(0.05, 0.05) = 0.05
            metric("TE", "Infinity"),
            metric("AD", None, error="Facet set is empty"),
        ]
    )
    c = suggest_constraints(base)
    got = {
        m["name"]: m.get("allowed_range")
        for m in c["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
    }
    assert got["DPPL"] == pytest.approx([-0.25, 0.25])
    assert got["DI"] == pytest.approx([1 - 0.2 - 0.15, 1 + 0.2 + 0.15])
    assert got["RD"] == pytest.approx([-0.55, 0.55])
    assert got["TE"] is None and got["AD"] is None  # infinite or undefined: not constrained
    assert (
        base["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"][0].get("allowed_range")
        is None
    )
    assert names(check(doc([metric("DPPL", 0.24), metric("DI", 0.66)]), c)) == []
    assert names(check(doc([metric("DPPL", -0.26), metric("DI", 1.36)]), c)) == ["DI", "DPPL"]
    # infinite window values violate finite ranges; undefined ones are not judged
    assert names(check(doc([metric("RD", "-Infinity"), metric("DPPL", None)]), c)) == ["RD"]
    # another facet value is not compared
    assert check(doc([metric("DPPL", 0.9)], facet_value="M"), c) == []


def test_confidence_interval_keeps_noise_out() -> None:
    c = suggest_constraints(doc([metric("DPPL", 0.1)]))  # allowed [-0.15, 0.15]
    noisy = doc([metric("DPPL", 0.2, confidence_interval=[0.12, 0.28])])
    assert check(noisy, c) == []  # overlaps the allowed range: could be noise
    clear = doc([metric("DPPL", 0.2, confidence_interval=[0.16, 0.24])])
    (v,) = check(clear, c)
    assert "bootstrap interval [0.16, 0.24]" in v["description"]


def test_bad_documents() -> None:
    with pytest.raises(BiasError, match="facets"):
        check({}, doc([]))
    with pytest.raises(BiasError, match="allowed_range"):
        check(doc([metric("DPPL", 0.1)]), doc([metric("DPPL", 0.1, allowed_range=[1])]))
    with pytest.raises(BiasError, match=">= 0"):
        suggest_constraints(doc([]), sigmas=-1)


def traffic(seed: int, n: int, biased: float = 0.0) -> dict[str, Any]:
    """A fair model on fresh data; ``biased`` turns that share of d's decisions negative."""
    rng = np.random.default_rng(seed)
    sex = np.where(rng.random(n) < 0.4, "F", "M").astype(object)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + rng.normal(0, 1, n) > 0).astype(int)
    pred = (x[:, 0] + rng.normal(0, 0.7, n) > 0).astype(int)
    pred[(sex == "F") & (rng.random(n) < biased)] = 0
    return {"sex": sex, "x": x, "y": y, "pred": pred, "group": rng.integers(0, 4, n)}


def report(t: dict[str, Any], seed: int) -> dict[str, Any]:
    return compute(
        {"sex": t["sex"]},
        [Facet("sex", values=("F",))],
        y_pred=t["pred"],
        y_true=t["y"],
        group=t["group"],
        features=t["x"],
        bootstrap=300,
        seed=seed,
    )


def test_biased_slice_violates_and_fair_traffic_does_not() -> None:
    constraints = suggest_constraints(report(traffic(0, 3000), seed=0))
    for seed in range(1, 11):  # fair windows drawn like the baseline
        assert check(report(traffic(seed, 1000), seed=seed), constraints) == [], seed
    violations = check(report(traffic(99, 1000, biased=0.3), seed=99), constraints)
    found = names(violations)
    assert {"DPPL", "DI", "CDDPL", "FT"} <= set(found)
    assert all(v["facet"] == "sex" and v["facet_value"] == "F" for v in violations)


def test_ge_constraint_from_the_baseline_and_its_violation() -> None:
    """GE in the baseline gets an allowed range around 0; a window whose errors pile up into
    false negatives and false positives (unequal benefits) violates it, a like window does not."""
    rng = np.random.default_rng(7)
    n = 4000

    def window(error_rate: float, seed: int) -> dict[str, Any]:
        r = np.random.default_rng(seed)
        sex = r.choice(["F", "M"], n)
        y_true = r.integers(0, 2, n)
        flip = r.uniform(size=n) < error_rate
        y_pred = np.where(flip, 1 - y_true, y_true)
        return compute({"sex": sex}, [Facet("sex", values=("F",))], y_pred=y_pred,
                       y_true=y_true, bootstrap=200, seed=seed)  # fmt: skip

    base = window(0.05, int(rng.integers(1 << 30)))
    constraints = suggest_constraints(base)
    (ge,) = [m for m in constraints["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
             if m["name"] == "GE"]  # fmt: skip
    assert ge["value"] > 0 and "standard_deviation" in ge
    lo, hi = ge["allowed_range"]
    assert lo < 0 < ge["value"] < hi
    assert "GE" not in names(check(window(0.05, 11), constraints))
    assert "GE" in names(check(window(0.30, 12), constraints))
