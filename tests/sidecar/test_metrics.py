"""The lock-free request metrics expose exactly what prometheus_client's own types would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from sidecar.metrics import LATENCY_BUCKETS, STATUS_CLASSES, LoopCounter, LoopHistogram


def _lines(registry: CollectorRegistry, prefix: str) -> list[str]:
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith(prefix) and "_created" not in line
    ]


def test_loop_histogram_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = LoopHistogram("t_seconds", "doc", LATENCY_BUCKETS, ours)
    ref = Histogram("t_seconds", "doc", buckets=LATENCY_BUCKETS, registry=theirs)
    rng = random.Random(7)
    values = [10 ** rng.uniform(-5, 2) for _ in range(2000)] + list(LATENCY_BUCKETS) + [0.0]
    for v in values:  # bounds themselves fall in their own bucket (le)
        fast.observe(v)
        ref.observe(v)
    assert _lines(ours, "t_seconds") == _lines(theirs, "t_seconds")
    assert any('le="0.0001"' in line for line in _lines(ours, "t_seconds_bucket"))


def test_loop_counter_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = LoopCounter("r", "doc", "status_class", STATUS_CLASSES, ours)
    ref = Counter("r", "doc", ["status_class"], registry=theirs)
    for cls in STATUS_CLASSES:
        ref.labels(cls)
    for cls in ("2xx", "2xx", "5xx", "4xx", "2xx"):
        fast.inc(cls)
        ref.labels(cls).inc()
    assert _lines(ours, "r_total") == _lines(theirs, "r_total")
    assert 'r_total{status_class="2xx"} 3.0' in _lines(ours, "r_total")
