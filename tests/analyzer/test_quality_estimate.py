"""analyzer.quality.estimate: CBPE on calibrated data, and the isotonic calibration map."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from analyzer.quality import Calibration, QualityError, compute, estimate, fit_calibration
from analyzer.quality.estimate import SECTION

METRICS = ("accuracy", "precision", "recall", "f1", "auc")


def calibrated(seed: int, n: int) -> tuple[Any, Any]:
    """True probabilities p and labels drawn as Bernoulli(p): p is perfectly calibrated."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 3.0, n)
    return p, (rng.random(n) < p).astype(int)


def realised(y: Any, score: Any, threshold: float) -> dict[str, float]:
    pred = (score >= threshold).astype(int)
    s = compute("BinaryClassification", y, pred, score)["binary_classification_metrics"]
    return {k: s[k]["value"] for k in METRICS}


def estimated(doc: dict[str, Any]) -> dict[str, float]:
    return {k: doc[SECTION][k]["value"] for k in METRICS}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_estimates_match_realised_metrics_on_calibrated_scores(seed: int, threshold: float) -> None:
    p, y = calibrated(seed, 20_000)
    est = estimated(estimate(p, threshold=threshold, seed=seed))
    real = realised(y, p, threshold)
    for name in METRICS:
        assert est[name] == pytest.approx(real[name], abs=0.015), name


def test_calibration_repairs_miscalibrated_scores() -> None:
    p_ref, y_ref = calibrated(10, 20_000)
    cal = fit_calibration(y_ref, p_ref**3)
    p, y = calibrated(11, 20_000)
    score = p**3  # the model's score: same ranking, far from a probability
    assert np.mean(np.abs(cal.apply(score) - p)) < 0.02
    assert np.mean(np.abs(score - p)) > 0.2
    real = realised(y, score, 0.1)
    fixed = estimated(estimate(score, calibration=cal, threshold=0.1))
    raw = estimated(estimate(score, threshold=0.1))
    for name in METRICS:
        assert fixed[name] == pytest.approx(real[name], abs=0.015), name
    assert abs(raw["precision"] - real["precision"]) > 0.2  # uncalibrated, the estimate is wrong


def test_calibration_matches_sklearn_isotonic_without_binning() -> None:
    rng = np.random.default_rng(3)
    score = np.round(rng.random(500), 2)  # ties, < MAX_BINS distinct scores
    y = (rng.random(500) < score**2).astype(int)
    cal = fit_calibration(y, score)
    ref = IsotonicRegression(out_of_bounds="clip").fit(score, y)
    grid = np.linspace(-0.1, 1.1, 1001)
    assert cal.apply(grid) == pytest.approx(ref.predict(grid), abs=1e-12)


def test_calibration_map_is_bounded_monotone_and_round_trips() -> None:
    p, y = calibrated(4, 50_000)
    cal = fit_calibration(y, p, max_bins=200)
    assert len(cal.scores) <= 400
    assert np.all(np.diff(cal.scores) >= 0) and np.all(np.diff(cal.probabilities) >= 0)
    assert cal.rows == 50_000
    doc = json.loads(json.dumps(cal.to_dict(), allow_nan=False))
    again = Calibration.from_dict(doc)
    assert again == cal
    stats = {"modeltap": {"calibration": doc}}
    grid = np.linspace(0, 1, 101)
    assert Calibration.from_statistics(stats).apply(grid) == pytest.approx(cal.apply(grid))
    # The pooled map still calibrates: about as well as the true probabilities.
    assert np.mean(np.abs(cal.apply(p) - p)) < 0.02


def test_calibration_with_string_labels() -> None:
    p, y = calibrated(5, 2000)
    a = fit_calibration(np.where(y == 1, "fraud", "ok"), p, positive_label="fraud")
    b = fit_calibration(y, p)
    assert a == b


def test_estimate_with_predicted_labels() -> None:
    p, _ = calibrated(6, 5000)
    pred = np.where(p >= 0.4, "yes", "no")
    by_labels = estimate(p, y_pred=pred, seed=1)[SECTION]
    assert by_labels == estimate(p, threshold=0.4, seed=1)[SECTION]


def test_estimate_layout_and_standard_deviation_rule() -> None:
    p, _ = calibrated(7, 199)
    doc = estimate(p)
    assert list(doc) == ["version", "dataset", SECTION]
    assert doc["dataset"]["item_count"] == 199
    assert set(doc[SECTION]) == set(METRICS)
    assert all(m["standard_deviation"] == "NaN" for m in doc[SECTION].values())
    p, _ = calibrated(7, 1000)
    doc = estimate(p)
    assert all(isinstance(m["standard_deviation"], float) for m in doc[SECTION].values())
    json.dumps(doc, allow_nan=False)


def test_estimate_edge_cases() -> None:
    doc = estimate(np.zeros(10))  # certain negatives: no expected positives, nothing decided
    assert doc[SECTION]["recall"]["value"] == "NaN"
    assert doc[SECTION]["precision"]["value"] == 0.0
    assert doc[SECTION]["accuracy"]["value"] == 1.0
    assert doc[SECTION]["auc"]["value"] == "NaN"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: estimate([0.2, 1.7]), "pass a calibration map"),
        (lambda: estimate([]), "no rows"),
        (lambda: fit_calibration([0, 1, 2], [0.1, 0.2, 0.3]), "binary labels expected"),
        (lambda: Calibration.from_dict({"method": "platt"}), "not an isotonic"),
        (lambda: Calibration.from_dict({"method": "isotonic", "scores": [1]}), "malformed"),
        (lambda: Calibration((0.0, 1.0), (0.8, 0.2)), "non-decreasing"),
        (lambda: Calibration((0.0, 1.0), (0.0, 1.2)), "within"),
        (lambda: Calibration.from_statistics({"version": 0.0}), "no modeltap.calibration"),
    ],
)
def test_bad_inputs_raise(call: Any, message: str) -> None:
    with pytest.raises(QualityError, match=message):
        call()
