"""The analyzer's Prometheus metrics: a custom collector over the latest run of each target.

Values are snapshots of the last finished run (gauges), plus counters of runs by status; every
label comes from a bounded set (configured endpoints and variants, baseline feature names capped
at ``max_features``, the six check types, fixed statistic names).
"""

from __future__ import annotations

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
from analyzer.registry import SECTIONS
from analyzer.results import COMPLETED, FAILED, NO_DATA, WITH_VIOLATIONS, RunResult
from analyzer.section import Limits

DRIFT_STATISTICS = (
    "distance", "linf_simple", "linf_robust", "ks_statistic", "ks_pvalue", "psi", "js", "wasserstein",
    "wasserstein_normed", "chi2_statistic", "chi2_pvalue", "pvalue",
)  # fmt: skip
MAX_CUSTOM = 50  # names a post-analytics hook may export per target
MAX_CLASSES = 20  # classes of a multiclass model exported per target (the most frequent)
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
        limits = Limits(max_features=self._max_features, max_classes=self._max_classes)
        for section in SECTIONS:
            found = {
                ident: result.sections[section.name]
                for ident, result in latest.items()
                if section.name in result.sections
            }
            yield from section.metrics(found, limits)
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
