"""statistics.json / constraints.json: schema, round trip, and reading a SageMaker-written file."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from analyzer import BaselineFormatError, InferredType, Profile, profile, suggest_constraints
from analyzer.constraints import ConstraintOptions
from analyzer.distance import ks_binned
from analyzer.schema import check_constraints, check_statistics, validate
from analyzer.statistics import profile_from_statistics, profile_to_statistics


@pytest.fixture(scope="module")
def prof(data_50k: dict[str, Any]) -> Profile:
    return profile(data_50k)


def test_statistics_follow_schema_and_sagemaker_layout(prof: Profile) -> None:
    doc = json.loads(json.dumps(profile_to_statistics(prof), allow_nan=False))
    check_statistics(doc)
    assert doc["version"] == 0 and doc["dataset"]["item_count"] == 50_000
    normal = next(f for f in doc["features"] if f["name"] == "normal")
    ns = normal["numerical_statistics"]
    assert ns["common"]["num_present"] + ns["common"]["num_missing"] == 50_000
    kll = ns["distribution"]["kll"]
    assert len(kll["buckets"]) == 10
    assert sum(b["count"] for b in kll["buckets"]) == ns["common"]["num_present"]
    assert (
        kll["buckets"][0]["lower_bound"] == ns["min"]
        and kll["buckets"][-1]["upper_bound"] == ns["max"]
    )
    assert kll["sketch"]["parameters"]["k"] == 2048
    # Deequ's layout: level h items weigh 2**h and add up to the count.
    total = sum(len(level) * 2**h for h, level in enumerate(kll["sketch"]["data"]))
    assert total == ns["common"]["num_present"]
    city = next(f for f in doc["features"] if f["name"] == "city")
    ss = city["string_statistics"]
    assert ss["distinct_count"] == 50
    counts = [b["count"] for b in ss["distribution"]["categorical"]["buckets"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 50_000


def test_round_trip_is_exact(prof: Profile) -> None:
    doc = profile_to_statistics(prof)
    again = profile_from_statistics(json.loads(json.dumps(doc)))
    assert profile_to_statistics(again) == doc
    assert again.inferred_types() == prof.inferred_types()


def test_constraints_suggested(prof: Profile) -> None:
    doc = suggest_constraints(prof, ConstraintOptions(completeness_tolerance=0.05))
    check_constraints(json.loads(json.dumps(doc)))
    by_name = {f["name"]: f for f in doc["features"]}
    assert by_name["normal"]["completeness"] == pytest.approx(
        prof.columns["normal"].numeric.count / 50_000 - 0.05
    )
    assert by_name["lognormal"]["num_constraints"] == {"is_non_negative": True}
    assert by_name["uniform"]["num_constraints"] == {"is_non_negative": False}
    assert by_name["small"]["string_constraints"] == {"domains": ["a", "b", "c"]}
    assert "string_constraints" not in by_name["city"]  # 50 values > default 20
    assert "string_constraints" not in by_name["ids"]
    mc = doc["monitoring_config"]
    assert mc["evaluate_constraints"] == mc["emit_metrics"] == "Enabled"
    dc = mc["distribution_constraints"]
    assert dc == {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    }


def test_schema_reports_problems() -> None:
    bad = {
        "version": 0,
        "dataset": {"item_count": -1},
        "features": [{"name": 3, "inferred_type": "Bool"}],
    }
    errors = validate(bad, __import__("analyzer.schema").schema.STATISTICS_SCHEMA)
    assert any("item_count" in e for e in errors)
    assert any("features[0].name" in e for e in errors)
    assert any("Bool" in e for e in errors)
    with pytest.raises(BaselineFormatError):
        check_constraints(
            {"version": 0, "features": [], "monitoring_config": {"emit_metrics": "Yes"}}
        )


# A baseline as SageMaker's analyzer (Deequ) writes it: 1000 values 0..999 of a numeric feature,
# held by a KLL with 200 items at level 0 (weight 1) and 400 at level 1 (weight 2), and a string
# feature whose buckets list only the frequent values.
SAGEMAKER_STATISTICS: dict[str, Any] = {
    "version": 0,
    "dataset": {"item_count": 1010},
    "features": [
        {
            "name": "amount",
            "inferred_type": "Integral",
            "numerical_statistics": {
                "common": {"num_present": 1000, "num_missing": 10},
                "mean": 499.5,
                "sum": 499500.0,
                "std_dev": 288.6749902572095,
                "min": 0.0,
                "max": 999.0,
                "distribution": {
                    "kll": {
                        "buckets": [
                            {"lower_bound": 99.9 * i, "upper_bound": 99.9 * (i + 1), "count": 100.0}
                            for i in range(10)
                        ],
                        "sketch": {
                            "parameters": {"c": 0.64, "k": 2048.0},
                            "data": [
                                [float(v) for v in range(200)],
                                [float(v) for v in range(200, 1000, 2)],
                            ],
                        },
                    }
                },
            },
        },
        {
            "name": "plan",
            "inferred_type": "String",
            "string_statistics": {
                "common": {"num_present": 1010, "num_missing": 0},
                "distinct_count": 5.0,
                "distribution": {
                    "categorical": {
                        "buckets": [
                            {"value": "basic", "count": 600},
                            {"value": "pro", "count": 300},
                        ]
                    }
                },
            },
        },
    ],
}


def test_sagemaker_baseline_is_read() -> None:
    check_statistics(SAGEMAKER_STATISTICS)
    prof = profile_from_statistics(SAGEMAKER_STATISTICS)
    assert prof.item_count == 1010
    assert prof.inferred_types() == {"amount": InferredType.INTEGRAL, "plan": InferredType.STRING}
    amount = prof.columns["amount"]
    assert amount.type_counts.tolist() == [10, 1000, 0, 0]
    num = amount.numeric
    assert (num.count, num.min, num.max, num.mean) == (1000, 0.0, 999.0, 499.5)
    assert num.std_dev == pytest.approx(288.6749902572095)
    # The weighted items give back the distribution: CDF of 0..999 (every other value above 200).
    assert num.kll.n == 1000
    assert num.kll.get_rank(500.0) == pytest.approx(0.5, abs=0.002)
    assert num.kll.get_rank(100.0) == pytest.approx(0.1, abs=0.002)
    # Bins for the drift tests are derived from the sketch, and say so.
    assert num.bins is not None and not num.bins_exact and num.bins.sum() == 1000
    plan = prof.columns["plan"].strings
    assert plan is not None
    assert plan.counts_dict() == {"basic": 600, "pro": 300}
    assert plan.other_count == 110 and plan.distinct_count == 5 and not plan.distinct_exact
    # A monitoring window is profiled against it with the derived edges.
    window = profile(
        {"amount": np.arange(0, 1000), "plan": np.array(["basic"] * 1000, dtype=object)},
        baseline=prof,
    )
    assert ks_binned(num, window.columns["amount"].numeric) < 0.01
    # And it is written back in the same layout.
    check_statistics(json.loads(json.dumps(profile_to_statistics(prof))))


def test_malformed_statistics_rejected() -> None:
    with pytest.raises(BaselineFormatError, match="features"):
        profile_from_statistics({"version": 0, "dataset": {"item_count": 1}})
    doc = json.loads(json.dumps(SAGEMAKER_STATISTICS))
    doc["dataset"]["item_count"] = 5
    with pytest.raises(BaselineFormatError, match="accounts for 1000 rows, item_count is 5"):
        profile_from_statistics(doc)
