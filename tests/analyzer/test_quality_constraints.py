"""analyzer.quality.constraints: suggested directions and margins, and violations of windows."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm as stats_norm
from scipy.stats import t as stats_t

from analyzer.quality import QualityError, check, compute, suggest_constraints
from analyzer.quality.constraints import GREATER, LESS

LESS_BINARY = {
    "recall",
    "precision",
    "accuracy",
    "true_positive_rate",
    "true_negative_rate",
    "auc",
    "au_prc",
    "f0_5",
    "f1",
    "f2",
}


def binary(seed: int, n: int, flip_negatives: float = 0.0) -> dict[str, Any]:
    """A fixed model on fresh data; ``flip_negatives`` turns that share of true negatives' decisions positive."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(2.0 * y - 1.0 + rng.normal(0, 1.0, n))))
    pred = (score >= 0.5).astype(int)
    pred[(y == 0) & (rng.random(n) < flip_negatives)] = 1
    return compute("BinaryClassification", y, pred, score, seed=seed)


def regression(seed: int, n: int, noise: float = 1.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 3, n)
    return compute("Regression", t, t + rng.normal(0, noise, n), seed=seed)


def multiclass(seed: int, n: int, correct: float = 0.7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    y = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    pred = np.where(rng.random(n) < correct, y, rng.integers(0, 4, n))
    return compute("MulticlassClassification", y, pred, seed=seed)


def names(violations: list[dict[str, str]]) -> set[str]:
    return {v["metric_name"] for v in violations}


def test_binary_directions() -> None:
    c = suggest_constraints(binary(0, 2000))
    assert list(c) == ["version", "binary_classification_constraints"]
    section = c["binary_classification_constraints"]
    assert set(section) == LESS_BINARY | {"false_positive_rate", "false_negative_rate"}
    for name, entry in section.items():
        expected = GREATER if name.startswith("false_") else LESS
        assert entry["comparison_operator"] == expected, name
    assert not any(k.endswith("_best_constant_classifier") for k in section)


def test_regression_and_multiclass_directions() -> None:
    r = suggest_constraints(regression(0, 1000))["regression_constraints"]
    assert {k: v["comparison_operator"] for k, v in r.items()} == {
        "mae": GREATER,
        "mse": GREATER,
        "rmse": GREATER,
        "r2": LESS,
    }
    m = suggest_constraints(multiclass(0, 1000))["multiclass_classification_constraints"]
    assert set(m) == {
        "accuracy",
        "weighted_recall",
        "weighted_precision",
        "weighted_f0_5",
        "weighted_f1",
        "weighted_f2",
    }
    assert {v["comparison_operator"] for v in m.values()} == {LESS}


def test_margin_from_standard_deviation() -> None:
    stats = binary(0, 2000)
    s = stats["binary_classification_metrics"]
    q = stats_t.ppf(stats_norm.cdf(3.0), 4)  # 5 subsamples: 4 degrees of freedom
    assert q == pytest.approx(6.62, abs=0.01)
    c = suggest_constraints(stats)["binary_classification_constraints"]
    acc, sd = s["accuracy"]["value"], s["accuracy"]["standard_deviation"]
    assert c["accuracy"]["threshold"] == pytest.approx(acc - q * 2 * sd * math.sqrt(2))
    fpr, fsd = s["false_positive_rate"]["value"], s["false_positive_rate"]["standard_deviation"]
    assert c["false_positive_rate"]["threshold"] == pytest.approx(fpr + q * 2 * fsd * math.sqrt(2))
    # Windows a quarter of the baseline's size vary more, so the margin widens.
    small = suggest_constraints(stats, window_rows=500)["binary_classification_constraints"]
    assert small["accuracy"]["threshold"] == pytest.approx(acc - q * 2 * sd * math.sqrt(5))
    q2 = stats_t.ppf(stats_norm.cdf(2.0), 4)
    tight = suggest_constraints(stats, sigmas=2.0)["binary_classification_constraints"]
    assert tight["accuracy"]["threshold"] == pytest.approx(acc - q2 * 2 * sd * math.sqrt(2))


def test_relative_slack_without_standard_deviation() -> None:
    stats = binary(0, 150)
    s = stats["binary_classification_metrics"]
    assert s["accuracy"]["standard_deviation"] == "NaN"
    c = suggest_constraints(stats, slack=0.1)["binary_classification_constraints"]
    assert c["accuracy"]["threshold"] == pytest.approx(0.9 * s["accuracy"]["value"])
    fpr = s["false_positive_rate"]["value"]
    assert c["false_positive_rate"]["threshold"] == pytest.approx(fpr + 0.1 * (1 - fpr))

    r = regression(0, 100)
    rs = r["regression_metrics"]
    rc = suggest_constraints(r, slack=0.1)["regression_constraints"]
    assert rc["mae"]["threshold"] == pytest.approx(1.1 * rs["mae"]["value"])
    assert rc["rmse"]["threshold"] == pytest.approx(1.1 * rs["rmse"]["value"])
    assert rc["mse"]["threshold"] == pytest.approx(1.21 * rs["mse"]["value"])
    assert rc["r2"]["threshold"] == pytest.approx(1 - (1 - rs["r2"]["value"]) * 1.21)


def test_thresholds_stay_in_range_and_nan_metrics_are_skipped() -> None:
    stats = {
        "version": 0.0,
        "dataset": {"item_count": 1000},
        "binary_classification_metrics": {
            "accuracy": {"value": 0.02, "standard_deviation": 0.05},
            "false_positive_rate": {"value": 0.99, "standard_deviation": 0.05},
            "recall": {"value": "NaN", "standard_deviation": "NaN"},
            "confusion_matrix": {"0": {"0": 1}},
        },
    }
    c = suggest_constraints(stats)["binary_classification_constraints"]
    assert c == {
        "accuracy": {"threshold": 0.0, "comparison_operator": LESS},
        "false_positive_rate": {"threshold": 1.0, "comparison_operator": GREATER},
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_clean_windows_raise_no_violations(seed: int) -> None:
    cons = {
        "binary": suggest_constraints(binary(0, 5000)),
        "regression": suggest_constraints(regression(0, 5000)),
        "multiclass": suggest_constraints(multiclass(0, 5000)),
    }
    assert check(binary(seed, 5000), cons["binary"]) == []
    assert check(regression(seed, 5000), cons["regression"]) == []
    assert check(multiclass(seed, 5000), cons["multiclass"]) == []


def test_worse_binary_window_violates_exactly_the_affected_metrics() -> None:
    cons = suggest_constraints(binary(0, 5000))
    # A third of the negatives now decided positive: the positives and the scores are untouched.
    violations = check(binary(1, 5000, flip_negatives=0.33), cons)
    assert names(violations) == {
        "precision",
        "accuracy",
        "true_negative_rate",
        "false_positive_rate",
        "f0_5",
        "f1",
        "f2",
    }
    by_name = {v["metric_name"]: v for v in violations}
    assert by_name["false_positive_rate"]["constraint_check_type"] == GREATER
    assert by_name["accuracy"]["constraint_check_type"] == LESS


def test_worse_regression_and_multiclass_windows_violate_everything() -> None:
    r = check(regression(1, 5000, noise=1.5), suggest_constraints(regression(0, 5000)))
    assert names(r) == {"mae", "mse", "rmse", "r2"}
    m = check(multiclass(1, 5000, correct=0.5), suggest_constraints(multiclass(0, 5000)))
    assert names(m) == {
        "accuracy",
        "weighted_recall",
        "weighted_precision",
        "weighted_f0_5",
        "weighted_f1",
        "weighted_f2",
    }


def test_violation_shape_and_description() -> None:
    stats = {
        "binary_classification_metrics": {
            "accuracy": {"value": 0.62, "standard_deviation": "NaN"},
            "false_positive_rate": {"value": 0.3, "standard_deviation": "NaN"},
            "recall": {"value": "NaN", "standard_deviation": "NaN"},
        }
    }
    constraints = {
        "version": 0.0,
        "binary_classification_constraints": {
            "accuracy": {"threshold": 0.8, "comparison_operator": "LessThanThreshold"},
            "false_positive_rate": {"threshold": 0.3, "comparison_operator": GREATER},
            "recall": {"threshold": 0.5, "comparison_operator": LESS},
            "auc": {"threshold": 0.5, "comparison_operator": LESS},
        },
    }
    assert check(stats, constraints) == [
        {
            "constraint_check_type": "LessThanThreshold",
            "description": "Metric accuracy with 0.62 was LessThanThreshold '0.8'",
            "metric_name": "accuracy",
        }
    ]


def test_round_trip_through_json() -> None:
    base = json.loads(json.dumps(binary(0, 3000)))
    cons = json.loads(json.dumps(suggest_constraints(base)))
    window = json.loads(json.dumps(binary(1, 3000, flip_negatives=0.5)))
    assert "false_positive_rate" in names(check(window, cons))


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ({"version": 0.0}, "no binary_classification_constraints section"),
        ({"regression_constraints": {}}, r"sections present: \['regression_constraints'\]"),
        (
            {"binary_classification_constraints": {"accuracy": {"threshold": 0.5}}},
            "unknown comparison_operator None",
        ),
        (
            {
                "binary_classification_constraints": {
                    "accuracy": {"threshold": 0.5, "comparison_operator": "LessThan"}
                }
            },
            "unknown comparison_operator 'LessThan'",
        ),
        (
            {
                "binary_classification_constraints": {
                    "accuracy": {"threshold": "high", "comparison_operator": LESS}
                }
            },
            "threshold must be a number",
        ),
        ({"binary_classification_constraints": {"accuracy": 0.5}}, "must be an object"),
    ],
)
def test_malformed_constraints_raise(constraints: dict[str, Any], message: str) -> None:
    stats = binary(0, 100)
    with pytest.raises(QualityError, match=message):
        check(stats, constraints)


def test_statistics_without_one_metrics_section_raise() -> None:
    with pytest.raises(QualityError, match="found none"):
        suggest_constraints({"version": 0.0})
    both: dict[str, Any] = {"regression_metrics": {}, "binary_classification_metrics": {}}
    with pytest.raises(QualityError, match="exactly one"):
        check(both, {"regression_constraints": {}})
    with pytest.raises(QualityError, match="slack"):
        suggest_constraints(binary(0, 100), slack=1.5)
