"""Feature-attribution drift: NDCG of the live feature ranking against the baseline's.

SageMaker's score (docs/formats.md §8): with a(f) the baseline's global attribution of
feature f, F the features sorted by a (descending) and F' the same features sorted by the live
attribution::

    NDCG = DCG / iDCG,   DCG = sum_i a(F'_i) / log2(i + 1),   iDCG = sum_i a(F_i) / log2(i + 1)

over i = 1..m (``top_m`` limits both sums to the first positions). NDCG is 1 when the live
ranking puts the baseline's important features first, lower as they move down. A violation is
logged when it falls below the threshold (default 0.90), per label.

Choices where the formula is silent: the feature set is the baseline's (a live-only feature
has no a(f)); a baseline feature missing from the live attributions ranks last with 0. Gains
are magnitudes |a(f)| (``median`` aggregation can give negative values; importance is the
size). Ties in the live ranking keep the baseline's order, so identical attributions score
exactly 1. With no baseline attribution at all (iDCG = 0) there is no ranking to drift from:
NDCG is NaN and never a violation.

The attributions report, Clarify's ``analysis.json`` layout::

    {"version": "1.0",
     "explanations": {"kernel_shap": {"label0": {"global_shap_values": {"age": 0.31, ...},
                                                 "expected_value": 0.42}}}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analyzer.attribution.errors import AttributionError
from analyzer.attribution.kernel_shap import Aggregation, Explanation

DEFAULT_THRESHOLD = 0.90
CHECK_TYPE = "feature_attribution_drift_check"
METHOD = "kernel_shap"


def ndcg(
    baseline: Mapping[str, float], current: Mapping[str, float], *, top_m: int | None = None
) -> float:
    """NDCG of ``current``'s feature ranking against ``baseline``'s (module docstring)."""
    if top_m is not None and top_m < 1:
        raise AttributionError(f"top_m must be at least 1, got {top_m}")
    names = list(baseline)
    if not names:
        return math.nan
    gain = np.abs(np.array([float(baseline[f]) for f in names]))
    live = np.abs(np.array([float(current.get(f, 0.0)) for f in names]))
    if not (np.isfinite(gain).all() and np.isfinite(live).all()):
        raise AttributionError("attributions must be finite numbers")
    ideal = np.argsort(-gain, kind="stable")
    # live order; ties keep the baseline's order (lexsort: last key first)
    position = np.empty(len(names), np.intp)
    position[ideal] = np.arange(len(names))
    actual = np.lexsort((position, -live))
    m = len(names) if top_m is None else min(top_m, len(names))
    discount = 1.0 / np.log2(np.arange(2, m + 2))
    idcg = float(gain[ideal[:m]] @ discount)
    if idcg == 0.0:
        return math.nan
    return float(gain[actual[:m]] @ discount) / idcg


def check(
    value: float, *, label: str, threshold: float = DEFAULT_THRESHOLD
) -> list[dict[str, str]]:
    """SageMaker's violation when ``value`` is below ``threshold``; none when NaN."""
    if math.isnan(value) or value >= threshold:
        return []
    return [
        {
            "label": label,
            "metric_name": "shap",
            "constraint_check_type": CHECK_TYPE,
            "description": (
                f"Feature attribution drift {value:.4g} exceeds threshold {threshold:g}"
            ),
        }
    ]


def report(
    explanations: Mapping[str, Explanation] | Explanation,
    features: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    agg: Aggregation = "mean_abs",
) -> dict[str, Any]:
    """The attributions report of an explanation, one entry per model output (label).

    Outputs are named by ``labels`` or ``label0``, ``label1``... as Clarify does without
    ``label_headers``.
    """
    if isinstance(explanations, Explanation):
        global_values = explanations.global_values(agg)
        k = global_values.shape[1]
        names = list(labels) if labels is not None else [f"label{i}" for i in range(k)]
        if len(names) != k:
            raise AttributionError(f"{k} model outputs but {len(names)} labels: {names}")
        per_label = {
            name: (global_values[:, i], float(explanations.expected_value[i]))
            for i, name in enumerate(names)
        }
    else:
        per_label = {}
        for name, e in explanations.items():
            g = e.global_values(agg)
            per_label[name] = (g[:, 0], float(e.expected_value[0]))
    out = {}
    for name, (values, expected) in per_label.items():
        if len(values) != len(features):
            raise AttributionError(f"{len(values)} attributions but {len(features)} feature names")
        out[name] = {
            "global_shap_values": {f: float(v) for f, v in zip(features, values, strict=True)},
            "expected_value": expected,
        }
    return {"version": "1.0", "explanations": {METHOD: out}}


def _labels(doc: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    section = (doc.get("explanations") or {}).get(METHOD)
    if not isinstance(section, Mapping):
        raise AttributionError(f"the {what} has no explanations.{METHOD} section")
    return section


def compare(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    top_m: int | None = None,
) -> tuple[dict[str, float], list[dict[str, str]]]:
    """NDCG per label of two attribution reports, and the violations; labels in both only."""
    base, live = _labels(baseline, "baseline report"), _labels(current, "window report")
    scores: dict[str, float] = {}
    violations: list[dict[str, str]] = []
    for label, entry in base.items():
        if label not in live:
            continue
        score = ndcg(entry["global_shap_values"], live[label]["global_shap_values"], top_m=top_m)
        scores[label] = score
        violations.extend(check(score, label=label, threshold=threshold))
    return scores, violations
