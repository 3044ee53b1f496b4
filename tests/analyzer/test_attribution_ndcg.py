"""analyzer.attribution.ndcg: the score worked out by hand, violations and the report layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analyzer.attribution import AttributionError, Explanation, check, compare, ndcg, report

BASE = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}


def test_ndcg_by_hand() -> None:
    # baseline order F = a, b, c, d; live order F' = b, a, d, c
    live = {"a": 0.2, "b": 0.4, "c": 0.01, "d": 0.02}
    dcg = 0.3 / math.log2(2) + 0.5 / math.log2(3) + 0.05 / math.log2(4) + 0.15 / math.log2(5)
    idcg = 0.5 / math.log2(2) + 0.3 / math.log2(3) + 0.15 / math.log2(4) + 0.05 / math.log2(5)
    assert ndcg(BASE, live) == pytest.approx(dcg / idcg)
    # top 2: only the first two positions count
    top2 = (0.3 + 0.5 / math.log2(3)) / (0.5 + 0.3 / math.log2(3))
    assert ndcg(BASE, live, top_m=2) == pytest.approx(top2)
    assert ndcg(BASE, BASE) == 1.0
    assert ndcg(BASE, {k: 2 * v for k, v in BASE.items()}) == 1.0  # scale does not matter


def test_worst_order_ties_and_missing() -> None:
    reverse = {"a": 0.0, "b": 0.1, "c": 0.2, "d": 0.3}
    dcg = 0.05 + 0.15 / math.log2(3) + 0.3 / math.log2(4) + 0.5 / math.log2(5)
    idcg = 0.5 + 0.3 / math.log2(3) + 0.15 / math.log2(4) + 0.05 / math.log2(5)
    assert ndcg(BASE, reverse) == pytest.approx(dcg / idcg)
    assert ndcg(BASE, {k: 1.0 for k in BASE}) == 1.0  # ties keep the baseline's order
    # a feature missing from the live attributions ranks last; live-only features are ignored
    assert ndcg(BASE, {"b": 0.3, "c": 0.2, "d": 0.1, "zz": 9.0}) == pytest.approx(
        (0.3 + 0.15 / math.log2(3) + 0.05 / math.log2(4) + 0.5 / math.log2(5)) / idcg
    )
    assert math.isnan(ndcg({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 0.0}))
    with pytest.raises(AttributionError, match="top_m"):
        ndcg(BASE, BASE, top_m=0)


def test_check_violation() -> None:
    assert check(0.95, label="label0") == []
    assert check(math.nan, label="label0") == []
    (v,) = check(0.76, label="label0")
    assert v == {
        "label": "label0",
        "metric_name": "shap",
        "constraint_check_type": "feature_attribution_drift_check",
        "description": "Feature attribution drift 0.76 exceeds threshold 0.9",
    }
    assert check(0.85, label="y", threshold=0.8) == []


def test_report_and_compare() -> None:
    phi = np.zeros((2, 3, 1))
    phi[:, :, 0] = [[1.0, -2.0, 0.1], [3.0, 2.0, -0.1]]
    e = Explanation(phi, np.array([0.4]))
    doc = report(e, ["x", "y", "z"])
    assert doc == {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": {"x": 2.0, "y": 2.0, "z": pytest.approx(0.1)},
                    "expected_value": 0.4,
                }
            }
        },
    }
    swapped = Explanation(phi[:, [2, 1, 0], :], np.array([0.4]))
    # live y, z, x: (2 + 0.1 / log2 3 + 2 / 2) / (2 + 2 / log2 3 + 0.1 / 2)
    scores, violations = compare(doc, report(swapped, ["x", "y", "z"]), threshold=0.95)
    want = (2 + 0.1 / math.log2(3) + 1.0) / (2 + 2 / math.log2(3) + 0.05)
    assert scores["label0"] == pytest.approx(want)
    assert [v["label"] for v in violations] == ["label0"]
    scores, violations = compare(doc, doc)
    assert scores == {"label0": 1.0} and violations == []
    with pytest.raises(AttributionError, match="labels"):
        report(e, ["x", "y", "z"], labels=["a", "b"])
    with pytest.raises(AttributionError, match="explanations"):
        compare({}, doc)
