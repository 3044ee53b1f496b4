"""The sidecar's Prometheus metrics, all on an injected registry.

Names follow ``modeltap_sidecar_<name>_<unit>``; outcomes are labels of one counter, never pairs of
counters; every label takes values from a small fixed set.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from modeltap.build import register_process_metrics

# Latency buckets reach down to 100 µs: proxy overhead lives there.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
)  # fmt: skip

CAPTURE_OUTCOMES = (
    "spooled",  # written to a spool segment
    "dropped_queue_full",  # the in-memory queue was full
    "skipped_disk",  # the spool's disk was above the usage cutoff, or the spool at its byte budget
    "too_large",  # a body was above capture.max_payload_bytes
    "write_error",  # the spool write failed (e.g. ENOSPC before the cutoff noticed)
    "dropped_redaction_failed",  # a payload the redaction rules could not read (never written)
)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
UPSTREAM_ERRORS = ("connect", "connect_timeout", "timeout", "disconnected", "protocol")
REJECT_REASONS = (
    "header_timeout",  # the request head did not arrive within server.header_read_timeout_seconds
    "body_timeout",  # the body stalled longer than server.body_read_timeout_seconds
    "headers_too_large",  # a header field, the field count or the whole head over its limit
    "body_too_large",  # the body over server.max_body_bytes
    "bad_framing",  # Content-Length/Transfer-Encoding that could smuggle a request
    "http_version",  # a request line without an HTTP/1.x version (HTTP/0.9 style) or HTTP/2+
    "malformed",  # anything else the HTTP parser refused
)


class LoopHistogram(Collector):
    """A histogram updated from the event loop thread only: a bisect and two additions.

    prometheus_client's Histogram takes a mutex per update of each bucket and of the sum, which
    on the request path cost more than the rest of the bookkeeping; one writer needs no lock. A
    scrape (from another thread) copies the counts in one step, so buckets are consistent with
    each other and the count; the sum may miss an observation made during the copy.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._doc = documentation
        self._bounds = sorted(float(b) for b in buckets)
        self._labels = [floatToGoString(b) for b in self._bounds]  # type: ignore[no-untyped-call]
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Iterator[Metric]:
        counts = list(self._counts)
        total = self._sum
        cumulative, running = [], 0
        for label, n in zip([*self._labels, "+Inf"], counts, strict=True):
            running += n
            cumulative.append((label, running))
        yield HistogramMetricFamily(self._name, self._doc, buckets=cumulative, sum_value=total)


class LoopCounter(Collector):
    """A counter by one label with fixed values, updated from the event loop thread only."""

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        values: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._doc = documentation
        self._label = label
        self.counts = dict.fromkeys(values, 0)
        registry.register(self)

    def inc(self, value: str) -> None:
        self.counts[value] += 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=[self._label])
        for value, n in list(self.counts.items()):
            family.add_metric([value], n)
        yield family


class SidecarMetrics:
    """Every metric the sidecar exports; one instance per process (or per test)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # process_* and modeltap_sidecar_build_info{version,revision,python_version}
        self.build_info = register_process_metrics(registry, "sidecar")
        # The three updated on every request: lock-free, event loop only.
        self.requests = LoopCounter(
            "modeltap_sidecar_requests",
            "Requests answered by the proxy, by response status class.",
            "status_class",
            STATUS_CLASSES,
            registry,
        )
        self.request_duration = LoopHistogram(
            "modeltap_sidecar_request_duration_seconds",
            "Time from request received to response headers sent, through the proxy.",
            LATENCY_BUCKETS,
            registry,
        )
        self.upstream_duration = LoopHistogram(
            "modeltap_sidecar_upstream_duration_seconds",
            "Time the model server took to answer (request sent to response headers received).",
            LATENCY_BUCKETS,
            registry,
        )
        self.upstream_errors = Counter(
            "modeltap_sidecar_upstream_errors",
            "Requests the model server did not answer, by reason (answered 502/504).",
            ["reason"],
            registry=registry,
        )
        self.client_aborts = Counter(
            "modeltap_sidecar_client_aborts",
            "Clients that hung up while their response was being streamed.",
            registry=registry,
        )
        self.rejected = Counter(
            "modeltap_sidecar_rejected_requests",
            "Requests refused by the proxy port's limits (408, 413, 431, 400, 505), by reason.",
            ["reason"],
            registry=registry,
        )
        self.connections = Gauge(
            "modeltap_sidecar_client_connections",
            "Open client connections on the proxy port.",
            registry=registry,
        )
        self.connections_refused = Counter(
            "modeltap_sidecar_client_connections_refused",
            "Client connections refused (503, closed) because server.max_connections were open.",
            registry=registry,
        )
        self.capture_records = Counter(
            "modeltap_sidecar_capture_records",
            "Sampled request/response pairs, by what became of them.",
            ["outcome"],
            registry=registry,
        )
        self.capture_paused = Gauge(
            "modeltap_sidecar_capture_paused",
            "1 while capture is stopped because the spool disk is above the usage cutoff or the "
            "spool is at its byte budget (spool.max_bytes).",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "modeltap_sidecar_capture_queue_records",
            "Records waiting in memory for the spool writer.",
            registry=registry,
        )
        self.queue_oldest_age = Gauge(
            "modeltap_sidecar_capture_queue_oldest_age_seconds",
            "How long ago the oldest record not yet written to the spool was queued (0 when "
            "none): what a SIGKILL would lose starts there.",
            registry=registry,
        )
        self.disk_usage = Gauge(
            "modeltap_sidecar_spool_disk_usage_ratio",
            "Used fraction of the spool's filesystem (as df computes it).",
            registry=registry,
        )
        self.spool_bytes = Gauge(
            "modeltap_sidecar_spool_bytes",
            "Bytes of capture segments on the spool disk (open and sealed).",
            registry=registry,
        )
        self.spool_max_bytes = Gauge(
            "modeltap_sidecar_spool_max_bytes",
            "The spool's byte budget (spool.max_bytes; 0 = none): capture stops at it.",
            registry=registry,
        )
        self.spool_recovered = Counter(
            "modeltap_sidecar_spool_truncated_lines",
            "Half-written last lines dropped from segments recovered after a crash.",
            registry=registry,
        )
        self.segments_sealed = Counter(
            "modeltap_sidecar_spool_segments_sealed",
            "Spool segments sealed and handed to the uploader.",
            registry=registry,
        )
        self.upload_objects = Counter(
            "modeltap_sidecar_upload_objects",
            "Segments stored as objects and deleted from the spool.",
            registry=registry,
        )
        self.upload_bytes = Counter(
            "modeltap_sidecar_upload_bytes",
            "Bytes stored (after optional gzip).",
            registry=registry,
        )
        self.upload_records = Counter(
            "modeltap_sidecar_upload_records",
            "Capture records stored.",
            registry=registry,
        )
        self.upload_duration = Histogram(
            "modeltap_sidecar_upload_duration_seconds",
            "Time to store one segment, retries included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.upload_retries = Counter(
            "modeltap_sidecar_upload_retries",
            "Store attempts that failed and were retried.",
            registry=registry,
        )
        self.upload_failures = Counter(
            "modeltap_sidecar_upload_failures",
            "Failed store attempts, by reason.",
            ["reason"],
            registry=registry,
        )
        self.pending_segments = Gauge(
            "modeltap_sidecar_upload_pending_segments",
            "Sealed segments waiting to be stored.",
            registry=registry,
        )
        self.pending_bytes = Gauge(
            "modeltap_sidecar_upload_pending_bytes",
            "Bytes of sealed segments waiting to be stored.",
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "modeltap_sidecar_upload_oldest_pending_age_seconds",
            "Age of the oldest sealed segment not yet stored (0 when none): alert on this.",
            registry=registry,
        )
        for outcome in CAPTURE_OUTCOMES:
            self.capture_records.labels(outcome)
        for reason in UPSTREAM_ERRORS:
            self.upstream_errors.labels(reason)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
