"""Attribution drift's Prometheus metrics: global SHAP values and the NDCG of their ranking."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily

from analyzer.attribution.run import AttributionResult
from analyzer.section import Ident


def attribution_metrics(
    results: Mapping[Ident, AttributionResult], max_features: int, max_labels: int = 20
) -> Iterator[GaugeMetricFamily]:
    """Global SHAP attributions per feature and the NDCG of their ranking against the baseline,
    per explained output (``label``: at most ``max_labels`` of a target, in the report's order)."""
    labels = ["endpoint", "variant", "model"]
    ndcg = GaugeMetricFamily("modeltap_analyzer_attribution_ndcg",
                             "NDCG of the latest window's feature ranking by global attribution "
                             "against the baseline's (below 0.9: attribution drift).",
                             labels=[*labels, "label"])  # fmt: skip
    value = GaugeMetricFamily("modeltap_analyzer_feature_attribution",
                              "Global (mean absolute) SHAP attribution of a feature in the latest window.",
                              labels=[*labels, "label", "feature"])  # fmt: skip
    violations = GaugeMetricFamily("modeltap_analyzer_attribution_violations",
                                   "1 when the latest run's attribution NDCG fell below the threshold.",
                                   labels=[*labels, "label"])  # fmt: skip
    for ident, result in sorted(results.items()):
        kernel = ((result.report or {}).get("explanations") or {}).get("kernel_shap", {})
        shown = set(list(kernel)[:max_labels])
        for label, score in sorted(result.ndcg.items()):
            if label in shown and isinstance(score, int | float) and math.isfinite(score):
                ndcg.add_metric([*ident, label], float(score))
        for label, entry in sorted(kernel.items()):
            if label not in shown:
                continue
            for feature, v in list(entry.get("global_shap_values", {}).items())[:max_features]:
                value.add_metric([*ident, label, feature], float(v))
        for v in result.violations:
            if str(v.get("label", "")) in shown:
                violations.add_metric([*ident, str(v.get("label", ""))], 1.0)
    yield from (ndcg, value, violations)
