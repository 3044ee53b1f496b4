"""Attribution drift's Prometheus metrics: global SHAP values and the NDCG of their ranking."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from analyzer.section import Ident


def attribution_metrics(
    docs: Mapping[Ident, dict[str, Any]], max_features: int
) -> Iterator[GaugeMetricFamily]:
    """Global SHAP attributions per feature and the NDCG of their ranking against the baseline."""
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
    for ident, doc in sorted(docs.items()):
        if not doc:
            continue
        for label, score in sorted((doc.get("ndcg") or {}).items()):
            if isinstance(score, int | float) and math.isfinite(score):
                ndcg.add_metric([*ident, label], float(score))
        kernel = ((doc.get("report") or {}).get("explanations") or {}).get("kernel_shap", {})
        for label, entry in sorted(kernel.items()):
            for feature, v in list(entry.get("global_shap_values", {}).items())[:max_features]:
                value.add_metric([*ident, label, feature], float(v))
        for v in doc.get("violations") or []:
            violations.add_metric([*ident, str(v.get("label", ""))], 1.0)
    yield from (ndcg, value, violations)
