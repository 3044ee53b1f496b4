"""Data quality's Prometheus metrics: each target's latest violations by check and feature, its
window's per-feature statistics and completeness, and the drift measures and decision of each
feature (``drift_metrics`` is also the variant comparison's, with its reference's label)."""

from __future__ import annotations

import math
import typing
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily

from analyzer.data_quality.result import DataResult
from analyzer.evaluation import CheckType, Evaluation
from analyzer.inference import InferredType
from analyzer.profile import Profile
from analyzer.section import Ident, Limits

DRIFT_STATISTICS = (
    "distance", "linf_simple", "linf_robust", "ks_statistic", "ks_pvalue", "psi", "js", "wasserstein",
    "wasserstein_normed", "chi2_statistic", "chi2_pvalue", "pvalue",
)  # fmt: skip
NUMERIC_STATISTICS = ("mean", "std_dev", "min", "max", "sum")
CHECKS = typing.get_args(CheckType)
LABELS = ["endpoint", "variant", "model"]


def _number(x: object) -> float | None:
    """A measure as drift.json holds it: a finite-or-infinite float, None when not computed."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return None if math.isnan(x) else float(x)


def drift_metrics(
    evaluation: Evaluation | None,
    labels: Sequence[str],
    drift: GaugeMetricFamily,
    detected: GaugeMetricFamily,
    max_features: int,
) -> None:
    """Per-feature drift measures and the corrected decision of one evaluation (drift.json's)."""
    if evaluation is None:
        return
    for name in sorted(evaluation.features)[:max_features]:
        feature = evaluation.features[name]
        if feature.measures is not None:
            for stat in DRIFT_STATISTICS:
                value = _number(getattr(feature.measures, stat))
                if value is not None:
                    drift.add_metric([*labels, name, stat], value)
        decision = feature.decision
        if decision is not None and decision.tested:
            p_adjusted = _number(decision.p_adjusted)
            if p_adjusted is not None:
                drift.add_metric([*labels, name, "p_adjusted"], p_adjusted)
            detected.add_metric([*labels, name], 1.0 if decision.drift else 0.0)


def _feature_stats(
    window: Profile | None,
    ident: Ident,
    stat_g: GaugeMetricFamily,
    completeness: GaugeMetricFamily,
    max_features: int,
) -> None:
    """Per-feature statistics of the window, as statistics.json states them (SageMaker's
    feature_data_* / feature_non_null_*)."""
    if window is None:
        return
    rows = window.item_count
    for name in list(window.columns)[:max_features]:
        col, t = window.columns[name], window.inferred_type(name)
        if t.is_numeric:
            s = col.numeric
            if rows:
                completeness.add_metric([*ident, name], s.count / rows)
            values = {"sum": s.sum}
            if s.count:
                values.update(mean=s.mean, std_dev=s.std_dev, min=s.min, max=s.max)
            for stat in NUMERIC_STATISTICS:
                value = values.get(stat)
                if stat in ("mean", "std_dev") and value is not None and not math.isfinite(value):
                    continue  # statistics.json holds null for them
                if value is not None:
                    stat_g.add_metric([*ident, name, stat], float(value))
        elif t is InferredType.STRING:
            strings = col.strings
            present = col.num_present if strings is not None else 0
            if rows:
                completeness.add_metric([*ident, name], present / rows)
            distinct = strings.distinct_count if strings is not None else 0
            stat_g.add_metric([*ident, name, "distinct_count"], float(distinct))


def data_metrics(
    results: Mapping[Ident, DataResult], limits: Limits
) -> Iterator[GaugeMetricFamily]:
    violations = GaugeMetricFamily("modeltap_analyzer_violations",
                                   "Violations in the latest run, by check and feature.",
                                   labels=[*LABELS, "check", "feature"])  # fmt: skip
    stat_g = GaugeMetricFamily("modeltap_analyzer_feature_statistic",
                               "A statistic of a feature in the latest window (mean, std_dev, min, max, sum, distinct_count).",
                               labels=[*LABELS, "feature", "statistic"])  # fmt: skip
    completeness = GaugeMetricFamily("modeltap_analyzer_feature_completeness_ratio",
                                     "Share of present (non-missing) values of a feature in the latest window.",
                                     labels=[*LABELS, "feature"])  # fmt: skip
    drift_g = GaugeMetricFamily("modeltap_analyzer_feature_drift",
                                "A drift measure of a feature, latest window against the baseline "
                                "(distance is SageMaker's baseline_drift_check value).",
                                labels=[*LABELS, "feature", "statistic"])  # fmt: skip
    detected = GaugeMetricFamily("modeltap_analyzer_feature_drift_detected",
                                 "1 when the multiple-testing-corrected test found drift in a feature.",
                                 labels=[*LABELS, "feature"])  # fmt: skip
    for ident, result in sorted(results.items()):
        counts: dict[tuple[str, str], int] = {}
        for v in result.violations:
            k = (v.constraint_check_type, v.feature_name)
            counts[k] = counts.get(k, 0) + 1
        for (check, feature), n in sorted(counts.items())[: limits.max_features * len(CHECKS)]:
            violations.add_metric([*ident, check, feature], n)
        _feature_stats(result.window, ident, stat_g, completeness, limits.max_features)
        drift_metrics(result.evaluation, ident, drift_g, detected, limits.max_features)
    yield from (violations, stat_g, completeness, drift_g, detected)
