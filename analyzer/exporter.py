"""The analyzer's Prometheus metrics: a custom collector over the latest run of each target.

Values are snapshots of the last finished run (gauges), plus counters of runs by status. The
run-level families are here; each section and comparison stage adds its own
(``Section.metrics``: data quality's violation, feature and drift families, model quality's, ...).
Every label comes from a bounded set (configured endpoints and variants, baseline feature names
capped at ``max_features``, the six check types, fixed statistic names).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from analyzer.groundtruth import IngestCounters
from analyzer.groundtruth.ingest import REJECT_REASONS
from analyzer.registry import COMPARISONS, SECTIONS
from analyzer.results import COMPLETED, FAILED, NO_DATA, WITH_VIOLATIONS, RunResult
from analyzer.section import Limits

MAX_CUSTOM = 50  # names a post-analytics hook may export per target
MAX_CLASSES = 20  # classes of a multiclass model exported per target (the most frequent)
STATUSES = (COMPLETED, WITH_VIOLATIONS, NO_DATA, FAILED)


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
            numbers = [
                (k, v) for k, v in sorted(result.custom.items()) if isinstance(v, int | float)
            ]
            for name, number in numbers[:MAX_CUSTOM]:
                custom.add_metric([*ident, str(name)], float(number))
        yield from (status_g, duration, last_ok, rows, unparsed, bad, custom)
        limits = Limits(max_features=self._max_features, max_classes=self._max_classes)
        for section in SECTIONS:
            found = {
                ident: result.sections[section.name]
                for ident, result in latest.items()
                if section.name in result.sections
            }
            yield from section.metrics(found, limits)
        for stage in COMPARISONS:
            compared = {
                ident: result.comparisons[stage.name]
                for ident, result in latest.items()
                if stage.name in result.comparisons
            }
            yield from stage.metrics(compared, limits)
        if self.ingest is not None:
            yield from ingest_metrics(self.ingest)


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
