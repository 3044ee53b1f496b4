"""Model quality's Prometheus metrics (SageMaker's model-metrics names), one family each."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from analyzer.quality.run import QualityResult
from analyzer.section import Ident

MERGE_COUNTS = (
    "predictions", "labelled", "predictions_without_label", "labels", "labels_without_prediction",
    "duplicate_labels", "duplicate_prediction_ids", "label_row_mismatch",
)  # fmt: skip


def _scalar(entry: Any) -> float | None:
    """The value of a SageMaker ``{"value": x, "standard_deviation": y}`` metric, if a number."""
    value = entry.get("value") if isinstance(entry, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def quality_metrics(
    results: Mapping[Ident, QualityResult], max_classes: int
) -> Iterator[GaugeMetricFamily]:
    """Model-quality metrics of each target's latest run (SageMaker's model-metrics names)."""
    labels = ["endpoint", "variant", "model"]
    metric = GaugeMetricFamily("modeltap_analyzer_quality_metric",
                               "A model-quality metric of the latest run's labelled predictions "
                               "(accuracy, f1, auc, rmse, ...).", labels=[*labels, "metric"])  # fmt: skip
    per_class = GaugeMetricFamily("modeltap_analyzer_quality_class_metric",
                                  "Recall, precision or f1 of one class (multiclass, most frequent classes).",
                                  labels=[*labels, "class", "metric"])  # fmt: skip
    confusion = GaugeMetricFamily("modeltap_analyzer_quality_confusion_matrix",
                                  "Labelled predictions by actual and predicted class.",
                                  labels=[*labels, "actual", "predicted"])  # fmt: skip
    estimated = GaugeMetricFamily("modeltap_analyzer_quality_estimated_metric",
                                  "A metric estimated from calibrated probabilities before labels arrive "
                                  "(binary classifiers).", labels=[*labels, "metric"])  # fmt: skip
    coverage = GaugeMetricFamily("modeltap_analyzer_quality_label_coverage_ratio",
                                 "Share of the realised window's predictions that have a label.",
                                 labels=labels)  # fmt: skip
    merge_g = GaugeMetricFamily("modeltap_analyzer_quality_merge_rows",
                                "Predictions and labels of the latest join, by outcome.",
                                labels=[*labels, "kind"])  # fmt: skip
    unparsed = GaugeMetricFamily("modeltap_analyzer_quality_unparsed_predictions",
                                 "Predictions that could not be read from endpointOutput, by reason.",
                                 labels=[*labels, "reason"])  # fmt: skip
    bad_labels = GaugeMetricFamily("modeltap_analyzer_quality_bad_label_lines",
                                   "Ground-truth lines of the latest run skipped as malformed, by reason.",
                                   labels=[*labels, "reason"])  # fmt: skip
    violations = GaugeMetricFamily("modeltap_analyzer_quality_violations",
                                   "1 for each model-quality metric that crossed its threshold in the latest run.",
                                   labels=[*labels, "metric"])  # fmt: skip
    invalid = GaugeMetricFamily("modeltap_analyzer_quality_invalid_labels",
                                "Ground-truth labels of the latest join that cannot be labels of the model "
                                "(wrong type or class); left out of the metrics, and the run fails.",
                                labels=labels)  # fmt: skip
    for ident, result in sorted(results.items()):
        stats = result.statistics or {}
        for key, section in stats.items():
            if not key.endswith("_metrics") or not isinstance(section, dict):
                continue
            for name, entry in section.items():
                value = _scalar(entry)
                if value is not None:
                    metric.add_metric([*ident, name], value)
            for cls, entries in list((section.get("per_class") or {}).items())[:max_classes]:
                for name, entry in (entries or {}).items():
                    value = _scalar(entry)
                    if value is not None:
                        per_class.add_metric([*ident, str(cls), name], value)
            matrix = section.get("confusion_matrix") or {}
            classes = list(matrix)[:max_classes]
            for actual in classes:
                for predicted, n in (matrix.get(actual) or {}).items():
                    if predicted in classes:
                        confusion.add_metric([*ident, str(actual), str(predicted)], float(n))
        for section in (result.estimated or {}).values():
            if isinstance(section, dict):
                for name, entry in section.items():
                    value = _scalar(entry)
                    if value is not None:
                        estimated.add_metric([*ident, name], value)
        if result.raised:  # nothing was read
            continue
        if result.label_coverage is not None:
            coverage.add_metric(list(ident), float(result.label_coverage))
        merge = asdict(result.merge)
        for kind in MERGE_COUNTS:
            merge_g.add_metric([*ident, kind], float(merge[kind]))
        for reason, n in sorted(result.merge.unparsed_predictions.items()):
            unparsed.add_metric([*ident, reason], float(n))
        for reason, n in sorted(result.labels_read.reasons.items()):
            bad_labels.add_metric([*ident, reason], float(n))
        for v in result.violations:
            violations.add_metric([*ident, str(v.get("metric_name", ""))], 1.0)
        invalid.add_metric(list(ident), float(result.invalid_labels.count))
    yield from (metric, per_class, confusion, estimated, coverage, merge_g, unparsed, bad_labels,
                violations, invalid)  # fmt: skip
