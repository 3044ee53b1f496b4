"""The analyzer's Prometheus metrics: a custom collector over the latest run of each target.

Values are snapshots of the last finished run (gauges), plus counters of runs by status; every
label comes from a bounded set (configured endpoints and variants, baseline feature names capped
at ``max_features``, the six check types, fixed statistic names).
"""

from __future__ import annotations

import math
import threading
import typing
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from analyzer.checks import CheckType
from analyzer.groundtruth import IngestCounters
from analyzer.groundtruth.ingest import REJECT_REASONS
from analyzer.results import COMPLETED, FAILED, NO_DATA, WITH_VIOLATIONS, RunResult

DRIFT_STATISTICS = (
    "distance", "linf_simple", "linf_robust", "ks_statistic", "ks_pvalue", "psi", "js", "wasserstein",
    "wasserstein_normed", "chi2_statistic", "chi2_pvalue", "pvalue",
)  # fmt: skip
MAX_CUSTOM = 50  # names a post-analytics hook may export per target
MAX_CLASSES = 20  # classes of a multiclass model exported per target (the most frequent)
MERGE_COUNTS = (
    "predictions", "labelled", "predictions_without_label", "labels", "labels_without_prediction",
    "duplicate_labels", "duplicate_prediction_ids", "label_row_mismatch",
)  # fmt: skip
NUMERIC_STATISTICS = ("mean", "std_dev", "min", "max", "sum")
STATUSES = (COMPLETED, WITH_VIOLATIONS, NO_DATA, FAILED)
CHECKS = typing.get_args(CheckType)


class AnalyzerCollector(Collector):
    """Collects from the results ``record`` was given; safe to call from any thread."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        max_features: int = 200,
        max_classes: int = MAX_CLASSES,
    ) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str, str], RunResult] = {}
        self._last_success: dict[tuple[str, str, str], float] = {}
        self._runs: dict[tuple[str, str, str, str], int] = {}
        self._max_features = max_features
        self._max_classes = max_classes
        self.ingest: IngestCounters | None = None  # POST /ground-truth's counters, when enabled
        if registry is not None:
            registry.register(self)

    def record(self, result: RunResult) -> None:
        key = (result.endpoint, result.variant, result.model)
        with self._lock:
            self._latest[key] = result
            run_key = (*key, result.status)
            self._runs[run_key] = self._runs.get(run_key, 0) + 1
            if result.status != FAILED:
                self._last_success[key] = result.finished_at

    def collect(self) -> Iterator[Any]:
        with self._lock:
            latest = dict(self._latest)
            success = dict(self._last_success)
            runs = dict(self._runs)
        labels = ["endpoint", "variant", "model"]
        runs_total = CounterMetricFamily("modeltap_analyzer_runs", "Monitoring runs, by status.",
                                         labels=[*labels, "status"])  # fmt: skip
        for run_key, n in sorted(runs.items()):
            runs_total.add_metric(list(run_key), n)
        yield runs_total
        status_g = GaugeMetricFamily("modeltap_analyzer_run_status",
                                     "1 for the status of the latest run, 0 for the others.",
                                     labels=[*labels, "status"])  # fmt: skip
        duration = GaugeMetricFamily("modeltap_analyzer_run_duration_seconds", "Duration of the latest run.",
                                     labels=labels)  # fmt: skip
        last_ok = GaugeMetricFamily("modeltap_analyzer_last_success_timestamp_seconds",
                                    "When the latest run that did not fail finished (Unix time).", labels=labels)  # fmt: skip
        rows = GaugeMetricFamily(
            "modeltap_analyzer_rows", "Rows analysed in the latest run.", labels=labels
        )
        unparsed = GaugeMetricFamily("modeltap_analyzer_unparsed_records",
                                     "Records of the latest run that could not be parsed, by reason.",
                                     labels=[*labels, "reason"])  # fmt: skip
        bad = GaugeMetricFamily("modeltap_analyzer_bad_capture_lines",
                                "Capture lines (or whole objects) of the latest run skipped as malformed.",
                                labels=[*labels, "kind"])  # fmt: skip
        violations = GaugeMetricFamily("modeltap_analyzer_violations",
                                       "Violations in the latest run, by check and feature.",
                                       labels=[*labels, "check", "feature"])  # fmt: skip
        stat_g = GaugeMetricFamily("modeltap_analyzer_feature_statistic",
                                   "A statistic of a feature in the latest window (mean, std_dev, min, max, sum, distinct_count).",
                                   labels=[*labels, "feature", "statistic"])  # fmt: skip
        completeness = GaugeMetricFamily("modeltap_analyzer_feature_completeness_ratio",
                                         "Share of present (non-missing) values of a feature in the latest window.",
                                         labels=[*labels, "feature"])  # fmt: skip
        drift_g = GaugeMetricFamily("modeltap_analyzer_feature_drift",
                                    "A drift measure of a feature, latest window against the baseline "
                                    "(distance is SageMaker's baseline_drift_check value).",
                                    labels=[*labels, "feature", "statistic"])  # fmt: skip
        detected = GaugeMetricFamily("modeltap_analyzer_feature_drift_detected",
                                     "1 when the multiple-testing-corrected test found drift in a feature.",
                                     labels=[*labels, "feature"])  # fmt: skip
        variant_drift = GaugeMetricFamily("modeltap_analyzer_variant_drift",
                                          "A drift measure of a feature, this variant's latest window against the "
                                          "reference variant's (A/B).",
                                          labels=[*labels, "reference_variant", "feature", "statistic"])  # fmt: skip
        variant_detected = GaugeMetricFamily("modeltap_analyzer_variant_drift_detected",
                                             "1 when the corrected test found that a feature differs between this "
                                             "variant and the reference variant.",
                                             labels=[*labels, "reference_variant", "feature"])  # fmt: skip
        custom = GaugeMetricFamily("modeltap_analyzer_custom",
                                   "Numbers the post-analytics hook returned for the latest run.",
                                   labels=[*labels, "name"])  # fmt: skip
        for ident, result in sorted(latest.items()):
            for status in STATUSES:
                status_g.add_metric([*ident, status], 1.0 if result.status == status else 0.0)
            duration.add_metric(list(ident), result.duration_seconds)
            if ident in success:
                last_ok.add_metric(list(ident), success[ident])
            rows.add_metric(list(ident), result.rows)
            for reason, n in sorted(result.parse.reasons.items()):
                unparsed.add_metric([*ident, reason], n)
            bad.add_metric([*ident, "object"], result.read.bad_objects)
            bad.add_metric([*ident, "line"], result.read.bad_lines)
            counts: dict[tuple[str, str], int] = {}
            for v in result.violations:
                k = (v.get("constraint_check_type", ""), v.get("feature_name", ""))
                counts[k] = counts.get(k, 0) + 1
            for (check, feature), n in sorted(counts.items())[: self._max_features * len(CHECKS)]:
                violations.add_metric([*ident, check, feature], n)
            self._feature_stats(result, ident, stat_g, completeness)
            self._feature_drift(result.evaluation, ident, drift_g, detected)
            comparison = result.comparison or {}
            if "features" in comparison:
                ref = (*ident, str(comparison.get("reference_variant", "")))
                self._feature_drift(comparison, ref, variant_drift, variant_detected)
            numbers = [
                (k, v) for k, v in sorted(result.custom.items()) if isinstance(v, int | float)
            ]
            for name, number in numbers[:MAX_CUSTOM]:
                custom.add_metric([*ident, str(name)], float(number))
        yield from (status_g, duration, last_ok, rows, unparsed, bad, violations, stat_g, completeness,
                    drift_g, detected, variant_drift, variant_detected, custom)  # fmt: skip
        yield from quality_metrics(latest, self._max_classes)
        yield from bias_metrics(latest)
        yield from attribution_metrics(latest, self._max_features)
        if self.ingest is not None:
            yield from ingest_metrics(self.ingest)

    def _feature_drift(
        self,
        evaluation: dict[str, Any] | None,
        ident: tuple[str, ...],
        drift_g: GaugeMetricFamily,
        detected: GaugeMetricFamily,
    ) -> None:
        """Per-feature drift measures and the corrected decision of one evaluation (drift.json)."""
        features = (evaluation or {}).get("features", {})
        for name in sorted(features)[: self._max_features]:
            feature = features[name]
            measures = feature.get("measures") or {}
            for stat in DRIFT_STATISTICS:
                value = measures.get(stat)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    drift_g.add_metric([*ident, name, stat], float(value))
            decision = feature.get("decision") or {}
            if decision.get("tested"):
                if isinstance(decision.get("p_adjusted"), int | float):
                    drift_g.add_metric([*ident, name, "p_adjusted"], float(decision["p_adjusted"]))
                detected.add_metric([*ident, name], 1.0 if decision.get("drift") else 0.0)

    def _feature_stats(
        self,
        result: RunResult,
        ident: tuple[str, str, str],
        stat_g: GaugeMetricFamily,
        completeness: GaugeMetricFamily,
    ) -> None:
        """Per-feature statistics of the latest window (SageMaker's feature_data_* / feature_non_null_*)."""
        features = (result.statistics or {}).get("features", [])[: self._max_features]
        for f in features:
            name = str(f.get("name", ""))
            block = f.get("numerical_statistics") or f.get("string_statistics") or {}
            common = block.get("common", {})
            present, missing = common.get("num_present", 0), common.get("num_missing", 0)
            if present + missing:
                completeness.add_metric([*ident, name], present / (present + missing))
            for stat in NUMERIC_STATISTICS:
                value = block.get(stat)
                if isinstance(value, int | float):
                    stat_g.add_metric([*ident, name, stat], float(value))
            if "distinct_count" in block:
                stat_g.add_metric([*ident, name, "distinct_count"], float(block["distinct_count"]))


def _scalar(entry: Any) -> float | None:
    """The value of a SageMaker ``{"value": x, "standard_deviation": y}`` metric, if a number."""
    value = entry.get("value") if isinstance(entry, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def quality_metrics(
    latest: dict[tuple[str, str, str], RunResult], max_classes: int
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
    for ident, result in sorted(latest.items()):
        doc = result.quality
        if not doc:
            continue
        stats = doc.get("statistics") or {}
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
        for section in (doc.get("estimated") or {}).values():
            if isinstance(section, dict):
                for name, entry in section.items():
                    value = _scalar(entry)
                    if value is not None:
                        estimated.add_metric([*ident, name], value)
        if isinstance(doc.get("label_coverage"), int | float):
            coverage.add_metric(list(ident), float(doc["label_coverage"]))
        merge = doc.get("merge") or {}
        for kind in MERGE_COUNTS:
            if isinstance(merge.get(kind), int):
                merge_g.add_metric([*ident, kind], float(merge[kind]))
        for reason, n in sorted((merge.get("unparsed_predictions") or {}).items()):
            unparsed.add_metric([*ident, reason], float(n))
        for reason, n in sorted(
            ((doc.get("labels_read") or {}).get("bad_lines_by_reason") or {}).items()
        ):
            bad_labels.add_metric([*ident, reason], float(n))
        for v in doc.get("violations") or []:
            violations.add_metric([*ident, str(v.get("metric_name", ""))], 1.0)
        if isinstance((doc.get("invalid_labels") or {}).get("count"), int):
            invalid.add_metric(list(ident), float(doc["invalid_labels"]["count"]))
    yield from (metric, per_class, confusion, estimated, coverage, merge_g, unparsed, bad_labels,
                violations, invalid)  # fmt: skip


def ingest_metrics(c: IngestCounters) -> Iterator[CounterMetricFamily]:
    """POST /ground-truth: requests by outcome, records and objects stored."""
    requests = CounterMetricFamily("modeltap_analyzer_ground_truth_requests",
                                   "Ground-truth requests, by outcome (accepted or the rejection reason).",
                                   labels=["outcome"])  # fmt: skip
    requests.add_metric(["accepted"], c.accepted_requests)
    for reason in REJECT_REASONS:
        requests.add_metric([reason], c.rejected_requests.get(reason, 0))
    yield requests
    records = CounterMetricFamily("modeltap_analyzer_ground_truth_records",
                                  "Ground-truth records accepted and stored.")  # fmt: skip
    records.add_metric([], c.accepted_records)
    yield records
    lines = CounterMetricFamily("modeltap_analyzer_ground_truth_rejected_lines",
                                "Lines of rejected ground-truth requests, by reason.", labels=["reason"])  # fmt: skip
    for reason, n in sorted(c.rejected_lines.items()):
        lines.add_metric([reason], n)
    yield lines
    objects = CounterMetricFamily("modeltap_analyzer_ground_truth_objects",
                                  "Ground-truth objects written to the store.")  # fmt: skip
    objects.add_metric([], c.objects_written)
    yield objects


def bias_metrics(latest: dict[tuple[str, str, str], RunResult]) -> Iterator[GaugeMetricFamily]:
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
    for ident, result in sorted(latest.items()):
        doc = result.bias
        if not doc:
            continue
        for kind in ("rows", "labelled"):
            if isinstance(doc.get(kind), int):
                rows.add_metric([*ident, kind], float(doc[kind]))
        facets = ((doc.get("report") or {}).get("post_training_bias_metrics") or {}).get(
            "facets", {}
        )
        for facet, entries in sorted(facets.items()):
            for entry in entries[:MAX_CLASSES]:
                value = str(entry.get("value_or_threshold", ""))
                for m in entry.get("metrics", []):
                    v = m.get("value")
                    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                        metric.add_metric([*ident, facet, value, str(m.get("name"))], float(v))
        for v in doc.get("violations") or []:
            violations.add_metric(
                [*ident, str(v.get("facet", "")), str(v.get("facet_value", "")),
                 str(v.get("metric_name", ""))], 1.0,
            )  # fmt: skip
    yield from (metric, violations, rows)


def attribution_metrics(
    latest: dict[tuple[str, str, str], RunResult], max_features: int
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
    for ident, result in sorted(latest.items()):
        doc = result.attribution
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
