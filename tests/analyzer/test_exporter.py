from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry

from analyzer.exporter import AnalyzerCollector
from analyzer.job import FAILED, WITH_VIOLATIONS, RunResult
from analyzer.window import Window

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def result(status: str, finished: float) -> RunResult:
    r = RunResult("ep", "v1", Window(T0, T0 + dt.timedelta(hours=1)), status=status, rows=120)
    r.finished_at, r.duration_seconds = finished, 0.5
    r.parse.reasons = {"bad_json": 2}
    r.read.bad_lines = 3
    r.custom = {"rows_doubled": 240, "note": "text is not a metric"}
    r.evaluation = {"features": {
        "a": {"measures": {"distance": 0.2, "ks_statistic": 0.2, "ks_pvalue": 1e-9, "psi": None},
              "decision": {"pvalue": 1e-9, "p_adjusted": 2e-9, "drift": True, "tested": True}},
        "b": {"measures": None, "decision": {"pvalue": None, "p_adjusted": None, "drift": False, "tested": False}},
    }}  # fmt: skip
    r.statistics = {"features": [
        {"name": "a", "numerical_statistics": {"common": {"num_present": 90, "num_missing": 10}, "mean": 1.5,
                                               "std_dev": 0.5, "min": 0.0, "max": 3.0, "sum": 135.0}},
        {"name": "c", "string_statistics": {"common": {"num_present": 100, "num_missing": 0}, "distinct_count": 7}},
    ]}  # fmt: skip
    r.violations = [
        {"feature_name": "a", "constraint_check_type": "baseline_drift_check", "description": "x"},
        {"feature_name": "b", "constraint_check_type": "completeness_check", "description": "y"},
    ]
    return r


def test_latest_run_snapshot_and_counters() -> None:
    reg = CollectorRegistry()
    col = AnalyzerCollector(reg)
    col.record(result(WITH_VIOLATIONS, 1000.0))
    col.record(result(FAILED, 2000.0))
    get = reg.get_sample_value
    ev = {"endpoint": "ep", "variant": "v1", "model": ""}
    assert get("modeltap_analyzer_runs_total", {**ev, "status": WITH_VIOLATIONS}) == 1
    assert get("modeltap_analyzer_runs_total", {**ev, "status": FAILED}) == 1
    assert get("modeltap_analyzer_run_status", {**ev, "status": FAILED}) == 1
    assert get("modeltap_analyzer_run_status", {**ev, "status": WITH_VIOLATIONS}) == 0
    assert (
        get("modeltap_analyzer_last_success_timestamp_seconds", ev) == 1000.0
    )  # a failure is no success
    assert get("modeltap_analyzer_rows", ev) == 120
    assert get("modeltap_analyzer_unparsed_records", {**ev, "reason": "bad_json"}) == 2
    assert get("modeltap_analyzer_bad_capture_lines", {**ev, "kind": "line"}) == 3
    assert (
        get("modeltap_analyzer_violations", {**ev, "check": "baseline_drift_check", "feature": "a"})
        == 1
    )
    assert get("modeltap_analyzer_feature_completeness_ratio", {**ev, "feature": "a"}) == 0.9
    assert (
        get("modeltap_analyzer_feature_statistic", {**ev, "feature": "a", "statistic": "mean"})
        == 1.5
    )
    assert (
        get(
            "modeltap_analyzer_feature_statistic",
            {**ev, "feature": "c", "statistic": "distinct_count"},
        )
        == 7
    )
    assert (
        get("modeltap_analyzer_feature_drift", {**ev, "feature": "a", "statistic": "distance"})
        == 0.2
    )
    assert (
        get("modeltap_analyzer_feature_drift", {**ev, "feature": "a", "statistic": "p_adjusted"})
        == 2e-9
    )
    assert (
        get("modeltap_analyzer_feature_drift", {**ev, "feature": "a", "statistic": "psi"}) is None
    )
    assert get("modeltap_analyzer_feature_drift_detected", {**ev, "feature": "a"}) == 1
    assert get("modeltap_analyzer_feature_drift_detected", {**ev, "feature": "b"}) is None
    assert get("modeltap_analyzer_custom", {**ev, "name": "rows_doubled"}) == 240
    assert get("modeltap_analyzer_custom", {**ev, "name": "note"}) is None
