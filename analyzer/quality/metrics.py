"""Model-quality statistics: predictions against ground truth, in SageMaker's layout.

``compute(problem_type, y_true, y_pred, y_score)`` returns the statistics document (docs/formats.md
§5)::

    {"version": 0.0,
     "dataset": {"item_count": n, "evaluation_time": "2024-05-01T12:00:00.000Z"},
     "binary_classification_metrics": {"accuracy": {"value": 0.91, "standard_deviation": "NaN"},
                                       "confusion_matrix": {"0": {"0": 80, "1": 3}, ...}, ...},
     "modeltap": {"positive_label": "1"}}

Pure: no I/O; the clock only when ``evaluation_time`` is not given. Every count is a vectorised
numpy reduction (confusion matrices by ``np.bincount`` of encoded label pairs, curves by a sort
and a cumulative sum); scikit-learn is only the tests' reference.

Metrics, as SageMaker lists them (the DG's model-monitor-model-quality-metrics page):

* Regression: mae, mse, rmse, r2. r2 of a constant ``y_true`` is 1.0 for exact predictions and
  0.0 otherwise (scikit-learn's ``force_finite``).
* Binary: confusion_matrix, recall, precision, accuracy, true/false positive/negative rates,
  f0_5, f1, f2; with scores also the ROC and PR curves (at most 100 points each), auc (ROC)
  and, beyond SageMaker, au_prc (average precision). The ``_best_constant_classifier`` variants
  are those of the classifier that always predicts the positive label, which is what SageMaker
  reports (its published example has precision_best_constant = prevalence and recall 1.0).
* Multiclass: confusion_matrix, accuracy and support-weighted recall, precision, f0_5, f1, f2,
  each with a ``_best_constant_classifier`` variant predicting the most frequent actual class
  (ties: the first label), plus ``per_class`` recall, precision and f1. The confusion matrix
  and ``per_class`` hold at most ``MAX_CLASSES`` classes, the most frequent actual ones; the
  weighted metrics always use every class, and ``modeltap.class_count`` tells when the cap cut.

Undefined ratios (0/0): a rate about a class the window has no actual row of is NaN (recall,
true_positive_rate, false_negative_rate and the F-scores with no actual positive; true_negative_
and false_positive_rate with no actual negative; per-class recall of an unseen class), because
a window without positives says nothing about how the model finds them, and NaN is never a
constraint violation. Precision with no predicted positive is 0.0 (scikit-learn's
``zero_division=0``): there it is the model that stopped predicting the class. Weighted
averages follow scikit-learn (a class without support weighs 0). auc and au_prc are NaN unless
both classes occur. NaN is written as the string ``"NaN"``, as SageMaker does.

Standard deviation (SageMaker's rule): only with at least ``STD_MIN_ROWS`` rows, the sample
standard deviation (ddof=1) of the metric over ``STD_SAMPLES`` random subsamples of
``STD_FRACTION`` of the rows, drawn without replacement from ``numpy.random.default_rng(seed)``,
so a fixed seed gives the same numbers. Subsamples of 80% of a fixed set vary about half as much
as the metric itself does between independent sets of n rows (``constraints`` accounts for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.quality.curves import curves
from analyzer.quality.errors import QualityError
from analyzer.quality.labels import (
    Bools,
    Floats,
    Ints,
    ProblemType,
    aligned,
    encode,
    numbers,
    positive_code,
)

STD_MIN_ROWS = 200
STD_SAMPLES = 5
STD_FRACTION = 0.8
MAX_CLASSES = 50
FBETAS = {"f0_5": 0.5, "f1": 1.0, "f2": 2.0}
BEST = "_best_constant_classifier"

Value = float | Floats
"""A metric of one subsample: a float, or one float per reported class."""
Index = npt.NDArray[np.intp] | slice


def compute(
    problem_type: ProblemType | str,
    y_true: Any,
    y_pred: Any,
    y_score: Any | None = None,
    *,
    positive_label: Any | None = None,
    seed: int = 0,
    evaluation_time: datetime | None = None,
) -> dict[str, Any]:
    """The model-quality statistics of one dataset (baseline or window), SageMaker's layout.

    ``y_score`` is the probability (or any score, higher meaning more positive) of the positive
    label, for binary problems only. ``positive_label``: see ``analyzer.quality.labels``.
    """
    problem = ProblemType.parse(problem_type)
    inputs = {"y_true": y_true, "y_pred": y_pred}
    if y_score is not None:
        if problem is not ProblemType.BINARY:
            raise QualityError(f"y_score is only used by BinaryClassification, not {problem.value}")
        inputs["y_score"] = y_score
    arrays = aligned(inputs)
    n = len(arrays["y_true"])
    extra: dict[str, Any] = {}
    if problem is ProblemType.REGRESSION:
        section = _regression_section(arrays, n, seed)
    elif problem is ProblemType.BINARY:
        section, extra = _binary_section(arrays, n, seed, positive_label)
    else:
        section, extra = _multiclass_section(arrays, n, seed)
    when = evaluation_time or datetime.now(UTC)
    out: dict[str, Any] = {
        "version": 0.0,
        "dataset": {"item_count": n, "evaluation_time": iso(when)},
        problem.section: section,
    }
    if extra:
        out["modeltap"] = extra
    return out


def iso(when: datetime) -> str:
    """SageMaker's timestamp form: UTC, milliseconds, ``Z``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def json_float(x: float) -> float | str:
    """A float for JSON: NaN and infinities as SageMaker's strings."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(x)


def spread(fn: Callable[[Index], dict[str, Value]], n: int, seed: int) -> dict[str, Any]:
    """``{name: {"value", "standard_deviation"}}`` of ``fn`` over all rows, by SageMaker's rule.

    Array-valued metrics (per class) come back as arrays of values and of deviations.
    """
    full = fn(slice(None))
    if n < STD_MIN_ROWS:
        sd = {k: np.full(np.shape(v), np.nan) for k, v in full.items()}
    else:
        rng = np.random.default_rng(seed)
        m = int(STD_FRACTION * n)
        reps = [fn(rng.choice(n, m, replace=False)) for _ in range(STD_SAMPLES)]
        sd = {k: np.std(np.array([r[k] for r in reps]), axis=0, ddof=1) for k in full}
    return {k: {"value": full[k], "standard_deviation": sd[k]} for k in full}


def metric_json(m: dict[str, Any]) -> dict[str, float | str]:
    """One scalar metric of ``spread`` as ``{"value", "standard_deviation"}`` JSON."""
    return {
        "value": json_float(float(m["value"])),
        "standard_deviation": json_float(float(m["standard_deviation"])),
    }


def _ratio(num: Any, den: Any, empty: float) -> Any:
    """num / den elementwise, ``empty`` where den == 0."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.divide(num, den, out=np.full(np.broadcast(num, den).shape, empty), where=den != 0)
    return out if out.ndim else float(out)


def _fbeta(tp: Any, fp: Any, fn: Any, beta: float, empty: float) -> Any:
    b2 = beta * beta
    return _ratio((1 + b2) * np.asarray(tp), (1 + b2) * np.asarray(tp) + b2 * fn + fp, empty)


# Regression ------------------------------------------------------------------------------------


def _regression(t: Floats, p: Floats) -> dict[str, Value]:
    err = p - t
    mse = float(np.mean(err * err))
    ss_res = float(np.sum(err * err))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    # A constant y_true: exact predictions score 1.0, any error 0.0 (scikit-learn's force_finite).
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
    return {"mae": float(np.mean(np.abs(err))), "mse": mse, "rmse": math.sqrt(mse), "r2": r2}


def _regression_section(arrays: dict[str, Any], n: int, seed: int) -> dict[str, Any]:
    t = numbers(arrays["y_true"], "y_true")
    p = numbers(arrays["y_pred"], "y_pred")
    stats = spread(lambda i: _regression(t[i], p[i]), n, seed)
    return {k: metric_json(v) for k, v in stats.items()}


# Binary ----------------------------------------------------------------------------------------

_BINARY_ORDER = (
    "recall",
    "precision",
    "accuracy",
    "recall" + BEST,
    "precision" + BEST,
    "accuracy" + BEST,
    "true_positive_rate",
    "true_negative_rate",
    "false_positive_rate",
    "false_negative_rate",
    "auc",
    "au_prc",
    *FBETAS,
    *(f + BEST for f in FBETAS),
)


def _binary(t: Bools, p: Bools, score: Floats | None) -> dict[str, Value]:
    tn, fp, fn, tp = np.bincount(2 * t.astype(np.intp) + p, minlength=4).tolist()
    n, pos, neg = t.size, tp + fn, tn + fp
    nan = math.nan
    out: dict[str, Value] = {
        "recall": _ratio(tp, pos, nan),
        "precision": _ratio(tp, tp + fp, 0.0),
        "accuracy": (tp + tn) / n,
        # Always predicting the positive label: tp = pos, fp = neg, fn = 0.
        "recall" + BEST: _ratio(pos, pos, nan),
        "precision" + BEST: pos / n,
        "accuracy" + BEST: pos / n,
        "true_positive_rate": _ratio(tp, pos, nan),
        "true_negative_rate": _ratio(tn, neg, nan),
        "false_positive_rate": _ratio(fp, neg, nan),
        "false_negative_rate": _ratio(fn, pos, nan),
    }
    if score is not None:
        c = curves(score, t.astype(np.float64), (~t).astype(np.float64))
        out["auc"] = c.auc
        out["au_prc"] = c.average_precision
    for name, beta in FBETAS.items():
        out[name] = _fbeta(tp, fp, fn, beta, nan)
        out[name + BEST] = _fbeta(pos, neg, 0, beta, nan)
    return out


def _binary_section(
    arrays: dict[str, Any], n: int, seed: int, positive_label: Any | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    enc = encode(arrays["y_true"], arrays["y_pred"])
    if len(enc.classes) > 2:
        raise QualityError(
            f"BinaryClassification takes two labels, got {len(enc.classes)}: "
            f"{enc.names[:10]}; use MulticlassClassification"
        )
    code, pos_name = positive_code(enc, positive_label)
    t = enc.true == code if code is not None else np.zeros(n, np.bool_)
    p = enc.pred == code if code is not None else np.zeros(n, np.bool_)
    score = numbers(arrays["y_score"], "y_score") if "y_score" in arrays else None
    stats = spread(lambda i: _binary(t[i], p[i], None if score is None else score[i]), n, seed)

    names = enc.names
    cm = confusion(enc.true, enc.pred, len(names))
    if code is None and pos_name is not None:
        names = [*names, pos_name]
        cm = np.pad(cm, ((0, 1), (0, 1)))
    section: dict[str, Any] = {"confusion_matrix": confusion_json(cm, names)}
    for key in _BINARY_ORDER:
        if key == "auc" and score is not None:
            c = curves(score, t.astype(np.float64), (~t).astype(np.float64))
            if c.fpr.size:
                section["receiver_operating_characteristic_curve"] = c.roc_json()
                section["precision_recall_curve"] = c.pr_json()
        if key in stats:
            section[key] = metric_json(stats[key])
    return section, {"positive_label": pos_name}


# Multiclass ------------------------------------------------------------------------------------


def confusion(t: Ints, p: Ints, k: int) -> Ints:
    """Counts of (actual, predicted) code pairs as a k x k matrix, rows actual."""
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def confusion_json(cm: Ints, names: list[str]) -> dict[str, dict[str, int]]:
    """SageMaker's nested ``{"actual": {"predicted": count}}`` with string keys."""
    rows = cm.tolist()
    return {a: dict(zip(names, row, strict=True)) for a, row in zip(names, rows, strict=True)}


def _weighted(tp: Floats, support: Floats, predicted: Floats, n: int) -> dict[str, Value]:
    """Support-weighted recall, precision and F-scores (scikit-learn's average='weighted')."""
    w = support / n
    fn, fp = support - tp, predicted - tp
    out: dict[str, Value] = {
        "weighted_recall": float(np.sum(w * _ratio(tp, support, 0.0))),
        "weighted_precision": float(np.sum(w * _ratio(tp, predicted, 0.0))),
    }
    for name, beta in FBETAS.items():
        out["weighted_" + name] = float(np.sum(w * _fbeta(tp, fp, fn, beta, 0.0)))
    return out


def _multiclass(t: Ints, p: Ints, k: int, top: Ints) -> dict[str, Value]:
    # Per-class counts in O(n + k): no k x k matrix, so many classes cost no memory.
    n = t.size
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    support = np.bincount(t, minlength=k).astype(np.float64)
    predicted = np.bincount(p, minlength=k).astype(np.float64)
    out: dict[str, Value] = {
        "accuracy": float(tp.sum() / n),
        **_weighted(tp, support, predicted, n),
    }
    best = int(np.argmax(support))
    const_tp, const_pred = np.zeros(k), np.zeros(k)
    const_tp[best], const_pred[best] = support[best], n
    out["accuracy" + BEST] = float(support[best] / n)
    for key, v in _weighted(const_tp, support, const_pred, n).items():
        out[key + BEST] = v
    out["per_class.recall"] = _ratio(tp[top], support[top], math.nan)
    out["per_class.precision"] = _ratio(tp[top], predicted[top], 0.0)
    out["per_class.f1"] = _fbeta(tp[top], (predicted - tp)[top], (support - tp)[top], 1.0, 0.0)
    return out


_MULTICLASS_ORDER = (
    "accuracy",
    "weighted_recall",
    "weighted_precision",
    *("weighted_" + f for f in FBETAS),
    "accuracy" + BEST,
    "weighted_recall" + BEST,
    "weighted_precision" + BEST,
    *("weighted_" + f + BEST for f in FBETAS),
)


def _multiclass_section(
    arrays: dict[str, Any], n: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    enc = encode(arrays["y_true"], arrays["y_pred"])
    k = len(enc.classes)
    support = np.bincount(enc.true, minlength=k)
    top = np.argsort(-support, kind="stable")[:MAX_CLASSES]
    stats = spread(lambda i: _multiclass(enc.true[i], enc.pred[i], k, top), n, seed)

    names = [enc.names[c] for c in top.tolist()]
    slot = np.full(k, -1, np.int64)
    slot[top] = np.arange(top.size)
    st, sp = slot[enc.true], slot[enc.pred]
    both = (st >= 0) & (sp >= 0)
    cm = confusion(st[both], sp[both], top.size)
    section: dict[str, Any] = {"confusion_matrix": confusion_json(cm, names)}
    for key in _MULTICLASS_ORDER:
        section[key] = metric_json(stats[key])
    per_class: dict[str, Any] = {name: {} for name in names}
    for metric in ("recall", "precision", "f1"):
        s = stats["per_class." + metric]
        for j, name in enumerate(names):
            per_class[name][metric] = metric_json(
                {"value": s["value"][j], "standard_deviation": s["standard_deviation"][j]}
            )
    section["per_class"] = per_class
    return section, {"class_count": k, "classes_reported": len(names)}
