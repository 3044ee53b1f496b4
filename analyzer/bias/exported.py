"""Bias drift's Prometheus metrics (SageMaker's bias_metric_<NAME>), one family each."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily

from analyzer.bias.run import BiasResult
from analyzer.section import Ident

MAX_FACET_VALUES = 20  # values of a facet exported per target


def bias_metrics(results: Mapping[Ident, BiasResult]) -> Iterator[GaugeMetricFamily]:
    """Post-training bias metrics per facet (SageMaker's bias_metric_<NAME>)."""
    labels = ["endpoint", "variant", "model"]
    metric = GaugeMetricFamily("modeltap_analyzer_bias_metric",
                               "A post-training bias metric of the latest window (DPPL, DI, AD, ...) "
                               "for one facet value.", labels=[*labels, "facet", "facet_value", "metric"])  # fmt: skip
    violations = GaugeMetricFamily("modeltap_analyzer_bias_violations",
                                   "1 for each bias metric outside its allowed range in the latest run.",
                                   labels=[*labels, "facet", "facet_value", "metric"])  # fmt: skip
    rows = GaugeMetricFamily("modeltap_analyzer_bias_rows",
                             "Predictions the latest bias run covered, and how many had labels.",
                             labels=[*labels, "kind"])  # fmt: skip
    invalid = GaugeMetricFamily("modeltap_analyzer_bias_invalid_labels",
                                "Ground-truth labels of the latest bias run that cannot be labels of "
                                "the model (wrong type or class); left out of the metrics, and the run "
                                "fails.", labels=labels)  # fmt: skip
    for ident, result in sorted(results.items()):
        if result.error:
            continue
        rows.add_metric([*ident, "rows"], float(result.rows))
        rows.add_metric([*ident, "labelled"], float(result.labelled))
        invalid.add_metric(list(ident), float(result.invalid_labels.count))
        facets = ((result.report or {}).get("post_training_bias_metrics") or {}).get("facets", {})
        for facet, entries in sorted(facets.items()):
            for entry in entries[:MAX_FACET_VALUES]:
                value = str(entry.get("value_or_threshold", ""))
                for m in entry.get("metrics", []):
                    v = m.get("value")
                    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                        metric.add_metric([*ident, facet, value, str(m.get("name"))], float(v))
        for v in result.violations:
            violations.add_metric(
                [*ident, str(v.get("facet", "")), str(v.get("facet_value", "")),
                 str(v.get("metric_name", ""))], 1.0,
            )  # fmt: skip
    yield from (metric, violations, rows, invalid)
