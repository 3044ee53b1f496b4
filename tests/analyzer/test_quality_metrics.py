"""analyzer.quality.metrics against scikit-learn, SageMaker's published example, and edge cases."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from analyzer.quality import ProblemType, QualityError, compute
from analyzer.quality.metrics import MAX_CLASSES, STD_FRACTION, STD_SAMPLES

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BEST = "_best_constant_classifier"


def value(section: dict[str, Any], name: str) -> float:
    v = section[name]["value"]
    return math.nan if v == "NaN" else float(v)


def binary_data(seed: int, n: int, prevalence: float) -> tuple[Any, Any, Any]:
    """0/1 labels, a noisy score with ties (2 decimals) and thresholded predictions."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(np.int64)
    score = np.round(1 / (1 + np.exp(-(2.0 * y - 1.0 + rng.normal(0, 1.2, n)))), 2)
    return y, (score >= 0.5).astype(np.int64), score


# name -> (encode 0/1 as labels, positive_label passed to compute)
LABEL_KINDS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "int": (lambda a: a, None),
    "bool": (lambda a: a.astype(bool), None),
    "yes_no": (lambda a: np.where(a == 1, "yes", "no"), None),
    "cat_dog": (lambda a: np.where(a == 1, "cat", "dog"), "cat"),
    "float": (lambda a: a.astype(np.float64), 1),
}


@pytest.mark.parametrize("kind", LABEL_KINDS)
@pytest.mark.parametrize(("seed", "prevalence"), [(0, 0.5), (1, 0.3), (2, 0.05), (3, 0.9)])
def test_binary_matches_sklearn(kind: str, seed: int, prevalence: float) -> None:
    y, pred, score = binary_data(seed, 3000, prevalence)
    enc, positive = LABEL_KINDS[kind]
    stats = compute(
        "BinaryClassification",
        enc(y),
        enc(pred),
        score,
        positive_label=positive,
        evaluation_time=WHEN,
    )
    s = stats["binary_classification_metrics"]
    assert stats["dataset"] == {"item_count": 3000, "evaluation_time": "2024-05-01T12:00:00.000Z"}
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert value(s, "accuracy") == pytest.approx(skm.accuracy_score(y, pred))
    assert value(s, "precision") == pytest.approx(skm.precision_score(y, pred))
    assert value(s, "recall") == pytest.approx(skm.recall_score(y, pred))
    assert value(s, "true_positive_rate") == pytest.approx(tp / (tp + fn))
    assert value(s, "true_negative_rate") == pytest.approx(tn / (tn + fp))
    assert value(s, "false_positive_rate") == pytest.approx(fp / (tn + fp))
    assert value(s, "false_negative_rate") == pytest.approx(fn / (tp + fn))
    assert value(s, "auc") == pytest.approx(skm.roc_auc_score(y, score))
    assert value(s, "au_prc") == pytest.approx(skm.average_precision_score(y, score))
    const = np.ones_like(y)
    assert value(s, "accuracy" + BEST) == pytest.approx(skm.accuracy_score(y, const))
    assert value(s, "precision" + BEST) == pytest.approx(skm.precision_score(y, const))
    assert value(s, "recall" + BEST) == pytest.approx(skm.recall_score(y, const))
    for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        assert value(s, name) == pytest.approx(skm.fbeta_score(y, pred, beta=beta))
        assert value(s, name + BEST) == pytest.approx(skm.fbeta_score(y, const, beta=beta))
    names = list(s["confusion_matrix"])  # sorted labels: "cat" comes before "dog"
    cm = skm.confusion_matrix(y, pred, labels=[1, 0] if kind == "cat_dog" else [0, 1])
    assert [[s["confusion_matrix"][a][p] for p in names] for a in names] == cm.tolist()
    json.dumps(stats, allow_nan=False)


def test_confusion_matrix_keys_are_rendered_labels() -> None:
    y, pred, _ = binary_data(0, 100, 0.5)
    for t, p in ((y, pred), (y.astype(bool), pred.astype(bool)), (y.astype(float), pred)):
        cm = compute("BinaryClassification", t, p)["binary_classification_metrics"]
        assert set(cm["confusion_matrix"]) == {"0", "1"}
    cm = compute(
        "BinaryClassification", np.where(y == 1, "yes", "no"), np.where(pred == 1, "yes", "no")
    )
    assert set(cm["binary_classification_metrics"]["confusion_matrix"]) == {"no", "yes"}


def test_mixed_label_types_compare_as_numbers() -> None:
    """Ground truth arrives as CSV text; predictions as numbers or bools."""
    y, pred, score = binary_data(5, 500, 0.4)
    ref = compute("BinaryClassification", y, pred, score, evaluation_time=WHEN)
    for t, p in (
        (y.astype(str), pred),
        (y.astype(str), pred.astype(bool)),
        (y.astype(object), pred.astype(float).astype(str)),
    ):
        assert compute("BinaryClassification", t, p, score, evaluation_time=WHEN) == ref


def test_roc_and_pr_curves_match_sklearn_points() -> None:
    y, _, score = binary_data(7, 60, 0.4)
    s = compute("BinaryClassification", y, (score > 0.5).astype(int), score)[
        "binary_classification_metrics"
    ]
    fpr, tpr, _ = skm.roc_curve(y, score, drop_intermediate=False)
    roc = s["receiver_operating_characteristic_curve"]
    assert roc["false_positive_rates"] == pytest.approx(fpr.tolist())
    assert roc["true_positive_rates"] == pytest.approx(tpr.tolist())
    prec, rec, _ = skm.precision_recall_curve(y, score)
    pr = s["precision_recall_curve"]
    k = len(rec)  # scikit-learn stops at the first threshold with full recall
    assert pr["recalls"][:k] == pytest.approx(rec[::-1].tolist())
    assert pr["precisions"][:k] == pytest.approx(prec[::-1].tolist())


def test_curves_are_thinned_to_100_points_with_their_ends() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    score = rng.random(5000) + y * 0.3
    s = compute("BinaryClassification", y, (score > 0.6).astype(int), score)[
        "binary_classification_metrics"
    ]
    roc, pr = s["receiver_operating_characteristic_curve"], s["precision_recall_curve"]
    assert 90 <= len(roc["false_positive_rates"]) <= 100
    assert len(pr["recalls"]) <= 100
    assert roc["false_positive_rates"][0] == 0.0 and roc["false_positive_rates"][-1] == 1.0
    assert roc["true_positive_rates"][-1] == 1.0
    assert np.all(np.diff(roc["false_positive_rates"]) >= 0)
    assert pr["recalls"][0] == 0.0 and pr["precisions"][0] == 1.0 and pr["recalls"][-1] == 1.0
    assert value(s, "auc") == pytest.approx(skm.roc_auc_score(y, score))  # from the full curve


def test_reproduces_sagemaker_published_binary_example() -> None:
    """DG model-monitor-model-quality-metrics: 4 rows, confusion matrix {0: {0: 1, 1: 2}, 1: {1: 1}}."""
    s = compute("BinaryClassification", [0, 0, 0, 1], [0, 1, 1, 1])["binary_classification_metrics"]
    assert s["confusion_matrix"] == {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}
    published = {
        "recall": 1.0,
        "precision": 0.3333333333333333,
        "accuracy": 0.5,
        "recall" + BEST: 1.0,
        "precision" + BEST: 0.25,
        "accuracy" + BEST: 0.25,
        "true_positive_rate": 1.0,
        "true_negative_rate": 0.33333333333333337,
        "false_positive_rate": 0.6666666666666666,
        "false_negative_rate": 0.0,
        "f0_5": 0.3846153846153846,
        "f1": 0.5,
        "f2": 0.7142857142857143,
        "f0_5" + BEST: 0.29411764705882354,
        "f1" + BEST: 0.4,
        "f2" + BEST: 0.625,
    }
    for name, v in published.items():
        assert value(s, name) == pytest.approx(v, abs=1e-12), name
        assert s[name]["standard_deviation"] == "NaN"
    assert "auc" not in s and "receiver_operating_characteristic_curve" not in s
    assert list(s)[:4] == ["confusion_matrix", "recall", "precision", "accuracy"]


def multiclass_data(seed: int, n: int, k: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k))
    y = rng.choice(k, n, p=p)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    return y, pred


@pytest.mark.parametrize("k", [3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("as_str", [False, True])
def test_multiclass_matches_sklearn(k: int, seed: int, as_str: bool) -> None:
    y, pred = multiclass_data(seed, 2000, k)
    labels = np.array([f"class_{i}" for i in range(k)]) if as_str else np.arange(k) * 10
    t, p = labels[y], labels[pred]
    stats = compute("MulticlassClassification", t, p, evaluation_time=WHEN)
    s = stats["multiclass_classification_metrics"]
    assert value(s, "accuracy") == pytest.approx(skm.accuracy_score(t, p))
    w = {"average": "weighted", "zero_division": 0}
    assert value(s, "weighted_recall") == pytest.approx(skm.recall_score(t, p, **w))
    assert value(s, "weighted_precision") == pytest.approx(skm.precision_score(t, p, **w))
    most = np.unique(t)[np.argmax([np.sum(t == c) for c in np.unique(t)])]
    const = np.full_like(t, most)
    assert value(s, "accuracy" + BEST) == pytest.approx(skm.accuracy_score(t, const))
    assert value(s, "weighted_recall" + BEST) == pytest.approx(skm.recall_score(t, const, **w))
    assert value(s, "weighted_precision" + BEST) == pytest.approx(
        skm.precision_score(t, const, **w)
    )
    for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        assert value(s, "weighted_" + name) == pytest.approx(skm.fbeta_score(t, p, beta=beta, **w))
        assert value(s, "weighted_" + name + BEST) == pytest.approx(
            skm.fbeta_score(t, const, beta=beta, **w)
        )
    names = [str(c) for c in np.unique(t)]
    cm = skm.confusion_matrix(t, p, labels=np.unique(t))
    got = s["confusion_matrix"]
    assert [[got[a][b] for b in names] for a in names] == cm.tolist()
    prec, rec, f1, _ = skm.precision_recall_fscore_support(t, p, labels=np.unique(t))
    for i, name in enumerate(names):
        pc = s["per_class"][name]
        assert pc["recall"]["value"] == pytest.approx(rec[i])
        assert pc["precision"]["value"] == pytest.approx(prec[i])
        assert pc["f1"]["value"] == pytest.approx(f1[i])
    assert stats["modeltap"] == {"class_count": k, "classes_reported": k}
    json.dumps(stats, allow_nan=False)


def test_multiclass_prediction_only_class_weighs_nothing() -> None:
    t = np.array(["a", "a", "b", "b", "b", "c"])
    p = np.array(["a", "d", "b", "b", "a", "d"])
    s = compute("MulticlassClassification", t, p)["multiclass_classification_metrics"]
    w = {"average": "weighted", "zero_division": 0}
    assert value(s, "weighted_precision") == pytest.approx(skm.precision_score(t, p, **w))
    assert value(s, "weighted_f1") == pytest.approx(skm.f1_score(t, p, **w))
    assert s["per_class"]["d"]["recall"]["value"] == "NaN"
    assert s["per_class"]["d"]["precision"]["value"] == 0.0
    assert s["confusion_matrix"]["a"]["d"] == 1


def test_multiclass_caps_reported_classes_at_the_most_frequent() -> None:
    rng = np.random.default_rng(0)
    k = MAX_CLASSES + 10
    weights = np.arange(k, 0, -1, dtype=float)
    y = rng.choice(k, 20_000, p=weights / weights.sum())
    stats = compute("MulticlassClassification", y, y)
    s = stats["multiclass_classification_metrics"]
    assert len(s["per_class"]) == MAX_CLASSES
    assert len(s["confusion_matrix"]) == MAX_CLASSES
    assert all(len(row) == MAX_CLASSES for row in s["confusion_matrix"].values())
    assert set(s["per_class"]) == {str(i) for i in range(MAX_CLASSES)}
    assert stats["modeltap"] == {"class_count": k, "classes_reported": MAX_CLASSES}
    assert value(s, "accuracy") == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = rng.normal(50, 10, 1000)
    p = t + rng.normal(0, 3 + seed, 1000)
    s = compute("Regression", t, p)["regression_metrics"]
    assert list(s) == ["mae", "mse", "rmse", "r2"]
    assert value(s, "mae") == pytest.approx(skm.mean_absolute_error(t, p))
    assert value(s, "mse") == pytest.approx(skm.mean_squared_error(t, p))
    assert value(s, "rmse") == pytest.approx(math.sqrt(skm.mean_squared_error(t, p)))
    assert value(s, "r2") == pytest.approx(skm.r2_score(t, p))


def test_regression_constant_truth_r2_as_sklearn() -> None:
    t = np.full(10, 3.0)
    for p in (t.copy(), t + np.arange(10)):
        s = compute("Regression", t, p)["regression_metrics"]
        assert value(s, "r2") == skm.r2_score(t, p)


def test_regression_accepts_numeric_strings_and_rejects_text() -> None:
    s = compute("Regression", ["1", "2", "3.5"], [1, 2, 3])["regression_metrics"]
    assert value(s, "mae") == pytest.approx(0.5 / 3)
    with pytest.raises(QualityError, match="y_pred must be numeric"):
        compute("Regression", [1, 2], ["a", "b"])
    with pytest.raises(QualityError, match="missing or infinite"):
        compute("Regression", [1.0, math.nan], [1, 2])


def test_standard_deviation_only_from_200_rows() -> None:
    y, pred, score = binary_data(0, 199, 0.5)
    s = compute("BinaryClassification", y, pred, score)["binary_classification_metrics"]
    assert all(v["standard_deviation"] == "NaN" for k, v in s.items() if "value" in v)
    y, pred, score = binary_data(0, 200, 0.5)
    s = compute("BinaryClassification", y, pred, score)["binary_classification_metrics"]
    assert all(isinstance(v["standard_deviation"], float) for k, v in s.items() if "value" in v)
    assert s["accuracy"]["standard_deviation"] > 0


def test_standard_deviation_is_the_documented_subsampling() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(0, 1, 1000)
    p = t + rng.normal(0, 0.5, 1000)
    a = compute("Regression", t, p, seed=42, evaluation_time=WHEN)
    assert a == compute("Regression", t, p, seed=42, evaluation_time=WHEN)
    assert a != compute("Regression", t, p, seed=43, evaluation_time=WHEN)
    draw = np.random.default_rng(42)
    m = int(STD_FRACTION * 1000)
    maes = []
    for _ in range(STD_SAMPLES):
        i = draw.choice(1000, m, replace=False)
        maes.append(skm.mean_absolute_error(t[i], p[i]))
    sd = a["regression_metrics"]["mae"]["standard_deviation"]
    assert sd == pytest.approx(np.std(maes, ddof=1))


def test_multiclass_standard_deviation_covers_per_class() -> None:
    y, pred = multiclass_data(0, 1000, 3)
    s = compute("MulticlassClassification", y, pred)["multiclass_classification_metrics"]
    assert isinstance(s["weighted_f1"]["standard_deviation"], float)
    assert all(isinstance(c["f1"]["standard_deviation"], float) for c in s["per_class"].values())


def test_single_class_window_has_nan_auc_and_no_curves() -> None:
    s = compute("BinaryClassification", [0, 0, 0], [0, 1, 0], [0.1, 0.7, 0.2])[
        "binary_classification_metrics"
    ]
    assert s["auc"]["value"] == "NaN" and s["au_prc"]["value"] == "NaN"
    assert "receiver_operating_characteristic_curve" not in s
    # No actual positive: rates about positives are undefined; the model's own FP still count.
    assert s["recall"]["value"] == "NaN" and s["f1"]["value"] == 0.0
    assert s["precision"]["value"] == 0.0 and s["false_positive_rate"]["value"] == 1 / 3
    assert s["confusion_matrix"] == {"0": {"0": 2, "1": 1}, "1": {"0": 0, "1": 0}}


def test_zero_division_rules() -> None:
    # Nothing predicted positive: precision 0.0 (scikit-learn's zero_division=0).
    s = compute("BinaryClassification", [1, 0, 1], [0, 0, 0])["binary_classification_metrics"]
    assert s["precision"]["value"] == 0.0 and s["recall"]["value"] == 0.0
    assert s["f1"]["value"] == skm.f1_score([1, 0, 1], [0, 0, 0], zero_division=0)
    # Neither actual nor predicted positives: F-scores undefined, not 0.
    s = compute("BinaryClassification", [0, 0], [0, 0])["binary_classification_metrics"]
    assert s["f1"]["value"] == "NaN" and s["accuracy"]["value"] == 1.0
    # No actual negatives.
    s = compute("BinaryClassification", [1, 1], [1, 0])["binary_classification_metrics"]
    assert s["false_positive_rate"]["value"] == "NaN"
    assert s["true_negative_rate"]["value"] == "NaN"


def test_positive_label_rules() -> None:
    with pytest.raises(QualityError, match="pass positive_label"):
        compute("BinaryClassification", ["cat", "dog"], ["cat", "cat"])
    with pytest.raises(QualityError, match="not one of the labels"):
        compute("BinaryClassification", ["cat", "dog"], ["cat", "cat"], positive_label="cow")
    s = compute("BinaryClassification", ["Yes", "no"], ["Yes", "Yes"])
    assert s["modeltap"] == {"positive_label": "Yes"}
    assert s["binary_classification_metrics"]["precision"]["value"] == 0.5
    s = compute("BinaryClassification", [2, 7, 7], [2, 2, 7], positive_label="7")
    assert s["modeltap"] == {"positive_label": "7"}
    assert s["binary_classification_metrics"]["recall"]["value"] == 0.5
    with pytest.raises(QualityError, match="not one of the labels"):
        compute("BinaryClassification", [2, 7], [2, 7])  # default positive 1 is absent
    with pytest.raises(QualityError, match="two labels, got 3"):
        compute("BinaryClassification", [0, 1, 2], [0, 1, 1])


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("Regression", [], []), {}, "no rows"),
        (("Regression", [1, 2], [1]), {}, "differ in length"),
        (
            ("Clustering", [1], [1]),
            {},
            "Regression, BinaryClassification, MulticlassClassification",
        ),
        (("MulticlassClassification", [1], [1], [0.3]), {}, "only used by BinaryClassification"),
        (("BinaryClassification", [1, None], [1, 0]), {}, "y_true has 1 missing labels"),
        (("BinaryClassification", ["a", None], ["a", "b"]), {}, "missing labels"),
        (("BinaryClassification", [1, 0], [1, 0], [0.5, math.nan]), {}, "y_score has 1 missing"),
        (("BinaryClassification", [[1, 0]], [[1, 0]]), {}, "one-dimensional"),
    ],
)
def test_bad_inputs_raise_quality_error(args: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(QualityError, match=message):
        compute(*args, **kwargs)


def test_problem_type_parsing() -> None:
    assert ProblemType.parse("binaryclassification") is ProblemType.BINARY
    assert ProblemType.parse(ProblemType.REGRESSION) is ProblemType.REGRESSION
    assert ProblemType.BINARY.section == "binary_classification_metrics"
    assert isinstance(QualityError("x"), ValueError)


def test_implementation_does_not_use_sklearn() -> None:
    package = Path(__file__).parents[2] / "analyzer" / "quality"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sklearn") for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("sklearn"), path
