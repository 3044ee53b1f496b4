"""analyzer.bias.metrics: every metric against counts worked out by hand, and the edge cases."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from analyzer.bias import BiasError, Facet, compute, flip_test
from analyzer.bias.metrics import METRIC_NAMES, value_of

# Facet a: TP=4, FP=2, FN=1, TN=5 (12 rows); facet d: TP=1, FP=1, FN=2, TN=4 (8 rows).
A = {"tp": 4, "fp": 2, "fn": 1, "tn": 5}
D = {"tp": 1, "fp": 1, "fn": 2, "tn": 4}


def rows(cells: dict[str, int], facet: str) -> tuple[list[str], list[int], list[int]]:
    """(facet, y_true, y_pred) rows with the given confusion-matrix counts."""
    pairs = {"tp": (1, 1), "fp": (0, 1), "fn": (1, 0), "tn": (0, 0)}
    out: tuple[list[str], list[int], list[int]] = ([], [], [])
    for cell, count in cells.items():
        t, p = pairs[cell]
        out[0].extend([facet] * count)
        out[1].extend([t] * count)
        out[2].extend([p] * count)
    return out


def data(a: dict[str, int] = A, d: dict[str, int] = D) -> dict[str, np.ndarray[Any, Any]]:
    fa, ta, pa = rows(a, "M")
    fd, td, pd = rows(d, "F")
    return {
        "sex": np.array(fa + fd, dtype=object),
        "y_true": np.array(ta + td),
        "y_pred": np.array(pa + pd),
    }


def values(report: dict[str, Any], facet: str = "sex", index: int = 0) -> dict[str, Any]:
    entry = report["post_training_bias_metrics"]["facets"][facet][index]
    return {m["name"]: m for m in entry["metrics"]}


def run(cols: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return compute(
        {"sex": cols["sex"]},
        [Facet("sex", values=("F",))],
        y_pred=cols["y_pred"],
        y_true=cols["y_true"],
        **kw,
    )


def test_every_labelled_metric_by_hand() -> None:
    m = {k: v["value"] for k, v in values(run(data())).items()}
    tp_a, fp_a, fn_a, tn_a = 4, 2, 1, 5
    tp_d, fp_d, fn_d, tn_d = 1, 1, 2, 4
    n_a, n_d = 12, 8
    q_a = (tp_a + fp_a) / n_a  # predicted positive share of a: 6/12
    q_d = (tp_d + fp_d) / n_d  # 2/8
    expected = {
        "DPPL": q_a - q_d,  # 0.25
        "DI": q_d / q_a,  # 0.5
        # observed positives / predicted positives
        "DCA": (tp_a + fn_a) / (tp_a + fp_a) - (tp_d + fn_d) / (tp_d + fp_d),  # 5/6 - 3/2
        # observed negatives / predicted negatives, d minus a
        "DCR": (tn_d + fp_d) / (tn_d + fn_d) - (tn_a + fp_a) / (tn_a + fn_a),  # 5/6 - 7/6
        "RD": tp_a / (tp_a + fn_a) - tp_d / (tp_d + fn_d),  # 4/5 - 1/3
        "SD": tn_d / (tn_d + fp_d) - tn_a / (tn_a + fp_a),  # 4/5 - 5/7
        "DAR": tp_a / (tp_a + fp_a) - tp_d / (tp_d + fp_d),  # 4/6 - 1/2
        "DRR": tn_d / (tn_d + fn_d) - tn_a / (tn_a + fn_a),  # 4/6 - 5/6
        "AD": (tp_a + tn_a) / n_a - (tp_d + tn_d) / n_d,  # 9/12 - 5/8
        "TE": fn_d / fp_d - fn_a / fp_a,  # 2/1 - 1/2
    }
    for name, want in expected.items():
        assert m[name] == pytest.approx(want), name
    assert m["DCA"] == pytest.approx(-2 / 3)
    assert m["TE"] == pytest.approx(1.5)


def test_ge_by_hand() -> None:
    """Generalized entropy as the Clarify documentation defines it: benefit b = y' - y + 1, mean
    benefit mu, GE = sum((b/mu)^2 - 1) / (n * 2 * 1) with alpha = 2."""
    m = values(run(data()))
    # FN = 1 + 2 (b = 0), FP = 2 + 1 (b = 2), correct = 9 + 5 (b = 1); n = 20, mu = 20/20 = 1
    by_hand = (3 * (0.0 - 1) + 14 * (1.0 - 1) + 3 * (4.0 - 1)) / (20 * 2 * 1)
    assert by_hand == 0.15
    assert m["GE"]["value"] == pytest.approx(by_hand, abs=1e-12)
    assert m["GE"]["description"] == "Generalized Entropy (GE)"
    # the same value under every facet value: GE does not depend on the facet
    cols = data()
    report = compute({"sex": cols["sex"]}, [Facet("sex")], y_pred=cols["y_pred"],
                     y_true=cols["y_true"])  # fmt: skip
    assert [values(report, index=i)["GE"]["value"] for i in range(2)] == pytest.approx([0.15] * 2)
    # a row-by-row computation on another mix, and alpha = 3 and Theil's alpha = 1
    cols = data(a={"tp": 7, "fp": 5, "fn": 1, "tn": 2}, d={"tp": 2, "fp": 0, "fn": 4, "tn": 3})
    b = cols["y_pred"] - cols["y_true"] + 1.0
    r = b / b.mean()
    assert values(run(cols))["GE"]["value"] == pytest.approx(np.mean(r**2 - 1) / 2)
    got = values(run(cols, ge_alpha=3.0))["GE"]["value"]
    assert got == pytest.approx(np.mean(r**3 - 1) / 6)
    theil = np.mean(np.where(r > 0, r * np.log(np.where(r > 0, r, 1.0)), 0.0))
    assert values(run(cols, ge_alpha=1.0))["GE"]["value"] == pytest.approx(theil)
    # no inequality: every prediction right, or every one a false positive
    assert values(run(data(a={"tp": 3, "tn": 2}, d={"tp": 1, "tn": 1})))["GE"]["value"] == 0.0
    assert values(run(data(a={"fp": 3}, d={"fp": 2})))["GE"]["value"] == 0.0
    # undefined when every prediction is a false negative (mean benefit 0)
    ge = values(run(data(a={"fn": 3}, d={"fn": 2})))["GE"]
    assert ge["value"] is None and "false negative" in ge["error"]
    # without labels it cannot be computed
    cols = data()
    no_truth = compute({"sex": cols["sex"]}, [Facet("sex", values=("F",))], y_pred=cols["y_pred"])
    assert values(no_truth)["GE"]["error"] == "GE needs the true labels (y_true)"


def test_layout_and_order() -> None:
    report = run(data())
    section = report["post_training_bias_metrics"]
    assert report["version"] == "1.0"
    assert section["label"] == "label" and section["label_value_or_threshold"] == "1"
    entry = section["facets"]["sex"][0]
    assert entry["value_or_threshold"] == "F"
    assert [m["name"] for m in entry["metrics"]] == sorted(METRIC_NAMES)
    dppl = values(report)["DPPL"]
    assert dppl["description"] == "Difference in Positive Proportions in Predicted Labels (DPPL)"
    assert set(dppl) == {"name", "description", "value"}
    # CDDPL without a group and FT without features fail alone, as Clarify reports failures
    assert values(report)["CDDPL"]["value"] is None
    assert "group" in values(report)["CDDPL"]["error"]
    assert values(report)["FT"]["error"] == "FT needs the feature columns"


def test_cddpl_by_hand() -> None:
    # (group, facet, predicted) counts; group C has no predicted negatives.
    spec = [
        ("A", "F", 1, 1), ("A", "F", 0, 3), ("A", "M", 1, 3), ("A", "M", 0, 1),
        ("B", "F", 1, 2), ("B", "M", 1, 2), ("B", "M", 0, 2),
        ("C", "M", 1, 2),
    ]  # fmt: skip
    group = np.array([g for g, _, _, c in spec for _ in range(c)])
    sex = np.array([f for _, f, _, c in spec for _ in range(c)], dtype=object)
    pred = np.array([p for _, _, p, c in spec for _ in range(c)])
    # DD_i = (d share of the group's rejections) - (d share of its acceptances)
    dd_a = 3 / 4 - 1 / 4  # rejected: 3 F + 1 M; accepted: 1 F + 3 M
    dd_b = 0 / 2 - 2 / 4  # rejected: 2 M; accepted: 2 F + 2 M
    dd_c = 0.0 - 0 / 2  # no rejections: that term is 0 (Clarify); accepted: 2 M
    want = (8 * dd_a + 6 * dd_b + 2 * dd_c) / 16
    report = compute({"sex": sex}, [Facet("sex", values=("F",))], y_pred=pred, group=group)
    m = values(report)
    assert m["CDDPL"]["value"] == pytest.approx(want) == pytest.approx(1 / 16)
    # without labels the label metrics are errors, the prediction metrics are not
    assert m["RD"]["value"] is None and "y_true" in m["RD"]["error"]
    # a (M): 3 + 2 + 2 of 10 predicted positive; d (F): 1 + 2 of 6
    assert m["DPPL"]["value"] == pytest.approx(7 / 10 - 3 / 6)


def test_cddpl_undefined_without_negative_predictions() -> None:
    sex = np.array(["F", "M", "M"], dtype=object)
    report = compute({"sex": sex}, [Facet("sex", values=("F",))], y_pred=[1, 1, 1], group=[0, 0, 1])
    assert values(report)["CDDPL"]["value"] is None


def test_flip_test_one_neighbour_by_hand() -> None:
    # a has 3 rows (<= 9), so k = 1. d rows and their nearest a row:
    xa, pa = [0.0, 1.0, 2.0], [1, 1, 0]
    xd = [0.1, 1.9, 1.1, 2.2, -1.0]
    pd = [0, 1, 1, 0, 0]
    # 0.1 -> 0 (pos) while d neg: F+;  1.9 -> 2 (neg) while d pos: F-;  1.1 -> 1 (pos) = pos;
    # 2.2 -> 2 (neg) = neg;  -1.0 -> 0 (pos) while d neg: F+.   FT = (2 - 1) / 5
    x = np.array(xa + xd)[:, None]
    d = np.array([False] * 3 + [True] * 5)
    assert flip_test(x, d, np.array(pa + pd, dtype=bool)) == pytest.approx(0.2)


def test_flip_test_five_neighbours_by_hand() -> None:
    xa = np.arange(10.0)  # 10 rows > 9: k = 5
    pa = xa < 5
    # 1 -> {0,1,2,3,4}: all pos, d neg: F+;  0 -> {0..4}: F+;
    # 8 -> {6,7,8,9,5}: all neg, d pos: F-;  4.4 -> {4,5,3,6,2}: 3 of 5 pos, d pos: none
    xd, pd = np.array([1.0, 0.0, 8.0, 4.4]), np.array([False, False, True, True])
    x = np.concatenate([xa, xd])[:, None]
    d = np.arange(14) >= 10
    assert flip_test(x, d, np.concatenate([pa, pd])) == pytest.approx((2 - 1) / 4)


def test_flip_test_sampling_bounds_cost() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30_000, 4))
    d = rng.random(30_000) < 0.5
    pred = x[:, 0] > 0
    ft = flip_test(x, d, pred, max_rows=500, seed=3)
    assert ft == flip_test(x, d, pred, max_rows=500, seed=3)  # seeded
    assert abs(ft) < 0.1  # the same model for both facets: little flipping


def test_ft_in_report_with_features() -> None:
    cols = data()
    x = np.arange(20.0)[:, None]
    m = values(run(cols, features=x))
    d = cols["sex"] == "F"
    assert m["FT"]["value"] == pytest.approx(flip_test(x, d, cols["y_pred"] == 1))
    m = values(run(cols, features=np.full((20, 1), np.nan)))
    assert m["FT"]["value"] is None and "finite" in m["FT"]["error"]


def test_symmetry() -> None:
    cols = data()
    forward = values(run(cols))
    backward = values(
        compute(
            {"sex": cols["sex"]},
            [Facet("sex", values=("M",))],
            y_pred=cols["y_pred"],
            y_true=cols["y_true"],
        )
    )
    for name in ("DPPL", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE"):
        assert backward[name]["value"] == pytest.approx(-forward[name]["value"]), name
    assert backward["DI"]["value"] == pytest.approx(1 / forward["DI"]["value"])
    # identical facets: no bias at all
    same = values(run(data(a=D, d=D)))
    for name in ("DPPL", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE"):
        assert same[name]["value"] == pytest.approx(0.0), name
    assert same["DI"]["value"] == pytest.approx(1.0)


def test_undefined_and_infinite() -> None:
    # d has no actual positives (TP = FN = 0): its recall is 0/0, undefined, not 0
    m = values(run(data(d={"tp": 0, "fp": 1, "fn": 0, "tn": 4})))
    assert m["RD"]["value"] is None and "0/0" in m["RD"]["error"]
    # d has no false positives but false negatives: FNd/FPd = +inf, as Clarify's divide
    m = values(run(data(d={"tp": 1, "fp": 0, "fn": 2, "tn": 4})))
    assert m["TE"]["value"] == "Infinity"
    assert value_of(m["TE"]["value"]) == math.inf
    # both facets without false positives: inf - inf is 0 (Clarify)
    m = values(
        run(data(a={"tp": 4, "fp": 0, "fn": 1, "tn": 5}, d={"tp": 1, "fp": 0, "fn": 2, "tn": 4}))
    )
    assert m["TE"]["value"] == 0.0
    # a never predicted positive, d sometimes: DI = q'd / 0 = +inf; DCA = x/0 - ... = +inf
    m = values(run(data(a={"fn": 3, "tn": 5}, d=D)))
    assert m["DI"]["value"] == "Infinity"
    assert m["DCA"]["value"] == "Infinity"
    assert m["DAR"]["value"] is None  # TPa / (TPa + FPa) = 0/0


def test_empty_facet() -> None:
    cols = data()
    report = compute(
        {"sex": cols["sex"]},
        [Facet("sex", values=("X",))],
        y_pred=cols["y_pred"],
        y_true=cols["y_true"],
    )
    for name, m in values(report).items():
        assert m["value"] is None or name == "GE"
    assert values(report)["DPPL"]["error"] == "Facet set is empty"
    # GE does not depend on the facet: all 20 rows have a facet value (see test_ge_by_hand)
    assert values(report)["GE"]["value"] == pytest.approx(0.15)


def test_threshold_facet_scores_and_missing() -> None:
    age = np.array([20.0, 30.0, 41.0, 50.0, 60.0, np.nan, 40.0, 45.0])
    score = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.9, 0.5, 0.3])
    report = compute({"age": age}, [Facet("age", threshold=40)], y_score=score)
    entry = report["post_training_bias_metrics"]["facets"]["age"][0]
    assert entry["value_or_threshold"] == "40"
    m = {x["name"]: x["value"] for x in entry["metrics"]}
    # d: age > 40 -> 41, 50, 60, 45 (scores .2 .7 .1 .3: 1 positive of 4);
    # a: 20, 30, 40 (.9 .6 .5: 3 of 3, score >= 0.5 is positive); NaN age is in neither
    assert m["DPPL"] == pytest.approx(3 / 3 - 1 / 4)
    assert m["DI"] == pytest.approx((1 / 4) / 1.0)
    assert report["modeltap"]["item_count"] == 8


def test_facet_one_vs_rest() -> None:
    cols = data()
    report = compute(
        {"sex": cols["sex"]}, [Facet("sex")], y_pred=cols["y_pred"], y_true=cols["y_true"]
    )
    entries = report["post_training_bias_metrics"]["facets"]["sex"]
    assert [e["value_or_threshold"] for e in entries] == ["M", "F"]  # most frequent first
    assert values(report, index=1)["DPPL"]["value"] == pytest.approx(0.25)
    # a numeric category written as text matches numbers in the column
    report = compute(
        {"c": np.array([1, 1, 0, 0])}, [Facet("c", values=("1",))], y_pred=[0, 0, 1, 1]
    )
    assert values(report, "c")["DPPL"]["value"] == pytest.approx(1.0)


def test_positive_values_as_text() -> None:
    cols = data()
    report = run(
        {
            "sex": cols["sex"],
            "y_pred": np.where(cols["y_pred"] == 1, "yes", "no"),
            "y_true": np.where(cols["y_true"] == 1, "yes", "no"),
        },
        positive_values=("yes",),
    )
    assert values(report)["DPPL"]["value"] == pytest.approx(0.25)


def test_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    sex = np.where(rng.random(n) < 0.4, "F", "M").astype(object)
    pred = (rng.random(n) < np.where(sex == "F", 0.3, 0.5)).astype(int)
    kw: dict[str, Any] = {"y_pred": pred, "bootstrap": 400, "seed": 7}
    report = compute({"sex": sex}, [Facet("sex", values=("F",))], **kw)
    again = compute({"sex": sex}, [Facet("sex", values=("F",))], **kw)
    assert report == again  # a fixed seed gives the same intervals
    dppl = values(report)["DPPL"]
    # DPPL = q'a - q'd, independent binomial shares: sd = sqrt(qa(1-qa)/na + qd(1-qd)/nd)
    d = sex == "F"
    qa, qd = pred[~d].mean(), pred[d].mean()
    sd = math.sqrt(qa * (1 - qa) / (~d).sum() + qd * (1 - qd) / d.sum())
    assert dppl["standard_deviation"] == pytest.approx(sd, rel=0.15)
    lo, hi = dppl["confidence_interval"]
    z = NormalDist().inv_cdf(0.975)
    assert lo == pytest.approx(dppl["value"] - z * dppl["standard_deviation"])
    assert lo < 0.2 < hi


def test_bad_inputs() -> None:
    with pytest.raises(BiasError, match="one length"):
        compute({"sex": []}, [Facet("sex", values=("F",))], y_pred=[])
    with pytest.raises(BiasError, match="unknown bias metrics"):
        compute({"sex": ["F"]}, [Facet("sex", values=("F",))], y_pred=[1], metrics=["XYZ"])
    with pytest.raises(BiasError, match="no column"):
        compute({"sex": ["F"]}, [Facet("age", threshold=3)], y_pred=[1])
    with pytest.raises(BiasError, match="y_pred or y_score"):
        compute({"sex": ["F"]}, [Facet("sex", values=("F",))])
    with pytest.raises(BiasError, match="not both"):
        Facet("x", values=(1,), threshold=2)
    with pytest.raises(BiasError, match="rows"):
        compute({"sex": ["F", "M"]}, [Facet("sex", values=("F",))], y_pred=[1])
