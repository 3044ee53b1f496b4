from __future__ import annotations

import datetime as dt
import math

import numpy as np
from prometheus_client import CollectorRegistry

from analyzer.attribution.run import AttributionResult
from analyzer.baseline import profile
from analyzer.bias.run import BiasResult
from analyzer.data_quality.result import DataResult
from analyzer.drift.decide import Decision
from analyzer.drift.measures import DriftMeasures
from analyzer.evaluation import Evaluation, FeatureResult, Violation
from analyzer.exporter import AnalyzerCollector
from analyzer.groundtruth import IngestCounters, LabelStats
from analyzer.groundtruth.predictions import MergeStats
from analyzer.llm.run import LLMResult
from analyzer.monitoring_config import MonitoringConfig
from analyzer.quality.run import QualityResult
from analyzer.results import FAILED, WITH_VIOLATIONS, RunResult
from analyzer.statistics import profile_to_statistics
from analyzer.variants.compare import VariantComparison
from analyzer.window import Window

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def measures(distance: float, pvalue: float, kind: str = "numeric") -> DriftMeasures:
    """One feature's drift measures: the distance, its test's p-value, the rest not computed."""
    nan = math.nan
    if kind == "numeric":
        return DriftMeasures("numeric", 100, 90, distance, distance, distance, nan, nan, "ks",
                             pvalue, ks_statistic=distance, ks_pvalue=pvalue)  # fmt: skip
    return DriftMeasures("categorical", 100, 100, distance, distance, distance, nan, nan,
                         "chi2_homogeneity", pvalue, chi2_pvalue=pvalue)  # fmt: skip


def feature(name: str, found: DriftMeasures | None, decision: Decision) -> FeatureResult:
    return FeatureResult(name, "Fractional", "Fractional", 100, 90, 0.9, None, 1.0, None,
                         measures=found, decision=decision)  # fmt: skip


def evaluation(*features: FeatureResult, violations: tuple[Violation, ...] = ()) -> Evaluation:
    return Evaluation(MonitoringConfig(), 0.05, "bonferroni", 100,
                      {f.name: f for f in features}, list(violations))  # fmt: skip


def data_result() -> DataResult:
    """The window: "a" numeric, 90 of 100 present, mean 1.5; "c" 7 categories; "a" drifted."""
    present = np.repeat([0.0, 1.5, 3.0], 30)
    window = profile({
        "a": np.concatenate([present, np.full(10, np.nan)]),
        "c": np.array([f"k{i % 7}" for i in range(100)], dtype=object),
    })  # fmt: skip
    nan = math.nan
    found = evaluation(
        feature("a", measures(0.2, 1e-9), Decision(1e-9, 2e-9, True, True)),
        feature("b", None, Decision(nan, nan, False, False)),
        violations=(Violation("a", "baseline_drift_check", "x"),
                    Violation("b", "completeness_check", "y")),
    )  # fmt: skip
    return DataResult(window, profile_to_statistics(window), found)


def result(status: str, finished: float) -> RunResult:
    r = RunResult("ep", "v1", Window(T0, T0 + dt.timedelta(hours=1)), status=status, rows=120)
    r.finished_at, r.duration_seconds = finished, 0.5
    r.parse.reasons = {"bad_json": 2}
    r.read.bad_lines = 3
    r.custom = {"rows_doubled": 240, "note": "text is not a metric"}
    r.sections["data"] = data_result()
    # model_quality.json of a binary classifier (analyzer.quality.run): 80 of 100 predictions
    # labelled, accuracy 0.8 under its threshold, and the label-free estimate of the current window.
    r.sections["quality"] = QualityResult(
        problem_type="BinaryClassification",
        merge=MergeStats(records=100, predictions=100, labelled=80, predictions_without_label=20,
                         labels=82, labels_without_prediction=2, duplicate_labels=1,
                         duplicate_prediction_ids=0, label_row_mismatch=0,
                         unparsed_predictions={"label_not_found": 3}),
        labels_read=LabelStats(objects=2, lines=83, labels=82, bad_objects=0, bad_lines=1,
                               reasons={"missing_event_id": 1}),
        label_coverage=0.8,
        statistics={"version": 0.0, "dataset": {"item_count": 80},
                       "binary_classification_metrics": {
                           "confusion_matrix": {"0": {"0": 30, "1": 10}, "1": {"0": 6, "1": 34}},
                           "accuracy": {"value": 0.8, "standard_deviation": "NaN"},
                           "f1": {"value": 0.81, "standard_deviation": "NaN"},
                           "auc": {"value": 0.88, "standard_deviation": "NaN"},
                           "receiver_operating_characteristic_curve": {"false_positive_rates": [0.0, 1.0],
                                                                       "true_positive_rates": [0.0, 1.0]}},
                       "modeltap": {"positive_label": "1"}},
        violations=[{"constraint_check_type": "LessThanThreshold", "metric_name": "accuracy",
                        "description": "Metric accuracy with 0.8 was LessThanThreshold '0.85'"}],
        estimated={"version": 0.0, "dataset": {"item_count": 120},
                      "estimated_binary_classification_metrics": {
                          "accuracy": {"value": 0.65, "standard_deviation": "NaN"},
                          "auc": {"value": 0.7, "standard_deviation": "NaN"}}},
    )  # fmt: skip
    # variants.json (analyzer.variants): this variant's window against the reference variant's.
    r.comparisons["variants"] = VariantComparison(
        "ep", "v1", "v0", 120, 110,
        evaluation=evaluation(
            feature("a", measures(0.3, 1e-6), Decision(1e-6, 2e-6, True, True)),
            feature("c", measures(0.01, 0.9, kind="categorical"), Decision(0.9, 1.0, False, True)),
        ),
    )  # fmt: skip
    # bias/ (analyzer.bias.run): Clarify's report for the facet age > 40, DPPL and DI over every
    # prediction, AD and RD over the labelled ones, TE undefined (no false positives in d); the
    # whole DPPL interval is past its allowed range.
    r.sections["bias"] = BiasResult(
        rows=120, labelled=80, unreadable_predictions={}, mismatched_records=0,
        report={"version": "1.0", "post_training_bias_metrics": {
            "label": "label", "label_value_or_threshold": "1",
            "facets": {"age": [{"value_or_threshold": "40", "metrics": [
                {"name": "DPPL", "description": "Difference in Positive Proportions in Predicted Labels (DPPL)",
                 "value": 0.33, "standard_deviation": 0.07, "confidence_interval": [0.2, 0.46]},
                {"name": "DI", "description": "Disparate Impact (DI)",
                 "value": 0.44, "standard_deviation": 0.08, "confidence_interval": [0.29, 0.58]},
                {"name": "AD", "description": "Accuracy Difference (AD)",
                 "value": -0.11, "standard_deviation": 0.08, "confidence_interval": [-0.26, 0.04]},
                {"name": "RD", "description": "Recall Difference (RD)",
                 "value": 0.25, "standard_deviation": 0.1, "confidence_interval": [0.06, 0.44]},
                {"name": "TE", "description": "Treatment Equality (TE)", "value": None,
                 "error": "facet d has no false positives"},
            ]}]}},
            "modeltap": {"item_count": 120}},
        violations=[{"facet": "age", "facet_value": "40", "metric_name": "DPPL",
                     "constraint_check_type": "bias_drift_check",
                     "description": "Value 0.33 does not meet the constraint requirement: "
                                    "allowed range [-0.15, 0.15] (baseline 0.05), "
                                    "bootstrap interval [0.2, 0.46]"}],
        captures_read={"objects": 2, "bad_lines": 0},
    )  # fmt: skip
    # attribution/ (analyzer.attribution.run): Kernel SHAP of 50 window rows; debt_ratio fell
    # from first to last place, NDCG 0.83 under the 0.9 threshold.
    r.sections["attribution"] = AttributionResult(
        rows_explained=50,
        report={"version": "1.0", "explanations": {"kernel_shap": {"label0": {
            "global_shap_values": {"income": 0.21, "age": 0.12, "debt_ratio": 0.02},
            "expected_value": 0.42}}}},
        ndcg={"label0": 0.83},
        violations=[{"label": "label0", "metric_name": "shap",
                     "constraint_check_type": "feature_attribution_drift_check",
                     "description": "Feature attribution drift 0.83 exceeds threshold 0.9"}],
    )  # fmt: skip
    # llm/ (analyzer.llm.run): 60 exchanges whose refusal share rose from 5% to 40%.
    r.sections["llm"] = LLMResult(
        exchanges=60, unreadable={"no_messages_or_prompt": 1},
        means={"prompt_chars": 612.5, "refusal": 0.4}, baseline_means={"refusal": 0.05},
        shares={"finish_reason": {"stop": 0.75, "length": 0.25}},
        evaluation={"features": {"refusal": {
            "measures": {"distance": 0.21},
            "decision": {"pvalue": 1e-6, "p_adjusted": 2e-5, "drift": True, "tested": True}}}},
        violations=[{"feature_name": "refusal", "constraint_check_type": "baseline_drift_check",
                     "description": "Numerical distance: 0.21 exceeds numerical threshold: 0.1"}],
    )  # fmt: skip
    return r


def ingest_counters() -> IngestCounters:
    """POST /ground-truth's running totals: some accepted, one unauthorized, one with bad lines."""
    return IngestCounters(
        accepted_requests=5,
        accepted_records=50,
        objects_written=2,
        rejected_requests={"unauthorized": 1, "invalid_lines": 1},
        rejected_lines={"bad_json": 2},
    )


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


def test_model_quality_and_variant_comparison() -> None:
    reg = CollectorRegistry()
    AnalyzerCollector(reg).record(result(WITH_VIOLATIONS, 1000.0))
    get = reg.get_sample_value
    ev = {"endpoint": "ep", "variant": "v1", "model": ""}
    assert get("modeltap_analyzer_quality_metric", {**ev, "metric": "accuracy"}) == 0.8
    assert get("modeltap_analyzer_quality_metric", {**ev, "metric": "auc"}) == 0.88
    assert (
        get("modeltap_analyzer_quality_metric", {**ev, "metric": "confusion_matrix"}) is None
    )  # curves and matrices are not scalars
    cm = "modeltap_analyzer_quality_confusion_matrix"
    assert get(cm, {**ev, "actual": "1", "predicted": "0"}) == 6
    assert get(cm, {**ev, "actual": "0", "predicted": "0"}) == 30
    assert get("modeltap_analyzer_quality_estimated_metric", {**ev, "metric": "accuracy"}) == 0.65
    assert get("modeltap_analyzer_quality_label_coverage_ratio", ev) == 0.8
    merge = "modeltap_analyzer_quality_merge_rows"
    assert get(merge, {**ev, "kind": "labelled"}) == 80
    assert get(merge, {**ev, "kind": "labels_without_prediction"}) == 2
    assert get(merge, {**ev, "kind": "records"}) is None  # not one of the exported counts
    unparsed = "modeltap_analyzer_quality_unparsed_predictions"
    assert get(unparsed, {**ev, "reason": "label_not_found"}) == 3
    bad = "modeltap_analyzer_quality_bad_label_lines"
    assert get(bad, {**ev, "reason": "missing_event_id"}) == 1
    assert get("modeltap_analyzer_quality_violations", {**ev, "metric": "accuracy"}) == 1
    assert get("modeltap_analyzer_quality_violations", {**ev, "metric": "auc"}) is None

    ab = {**ev, "reference_variant": "v0"}
    drift = "modeltap_analyzer_variant_drift"
    assert get(drift, {**ab, "feature": "a", "statistic": "ks_statistic"}) == 0.3
    assert get(drift, {**ab, "feature": "a", "statistic": "p_adjusted"}) == 2e-6
    assert get("modeltap_analyzer_variant_drift_detected", {**ab, "feature": "a"}) == 1
    assert get("modeltap_analyzer_variant_drift_detected", {**ab, "feature": "c"}) == 0


def test_multiclass_per_class_metrics() -> None:
    r = result(WITH_VIOLATIONS, 1000.0)
    r.sections["quality"] = QualityResult(
        problem_type="MulticlassClassification",
        statistics={"multiclass_classification_metrics": {
            "confusion_matrix": {"a": {"a": 2, "b": 0}, "b": {"a": 1, "b": 1}},
            "weighted_f1": {"value": 0.65, "standard_deviation": "NaN"},
            "per_class": {"a": {"recall": {"value": 1.0, "standard_deviation": "NaN"}},
                          "b": {"recall": {"value": 0.5, "standard_deviation": "NaN"}}},
        }},
    )  # fmt: skip
    reg = CollectorRegistry()
    AnalyzerCollector(reg, max_classes=1).record(r)
    get = reg.get_sample_value
    ev = {"endpoint": "ep", "variant": "v1", "model": ""}
    assert get("modeltap_analyzer_quality_metric", {**ev, "metric": "weighted_f1"}) == 0.65
    per_class = "modeltap_analyzer_quality_class_metric"
    assert get(per_class, {**ev, "class": "a", "metric": "recall"}) == 1.0
    assert get(per_class, {**ev, "class": "b", "metric": "recall"}) is None  # past max_classes
    cm = "modeltap_analyzer_quality_confusion_matrix"
    assert get(cm, {**ev, "actual": "a", "predicted": "a"}) == 2
    assert get(cm, {**ev, "actual": "b", "predicted": "a"}) is None
    assert get("modeltap_analyzer_quality_label_coverage_ratio", ev) is None  # none reported


def test_ground_truth_ingest_counters() -> None:
    reg = CollectorRegistry()
    col = AnalyzerCollector(reg)
    names = {family.name for family in reg.collect()}
    assert "modeltap_analyzer_ground_truth_requests" not in names  # no ingest: no series
    col.ingest = ingest_counters()
    get = reg.get_sample_value
    requests = "modeltap_analyzer_ground_truth_requests_total"
    assert get(requests, {"outcome": "accepted"}) == 5
    assert get(requests, {"outcome": "unauthorized"}) == 1
    assert get(requests, {"outcome": "too_large"}) == 0  # every reason is preset
    assert get("modeltap_analyzer_ground_truth_records_total", {}) == 50
    assert get("modeltap_analyzer_ground_truth_rejected_lines_total", {"reason": "bad_json"}) == 2
    assert get("modeltap_analyzer_ground_truth_objects_total", {}) == 2


def test_bias_and_attribution() -> None:
    reg = CollectorRegistry()
    AnalyzerCollector(reg).record(result(WITH_VIOLATIONS, 1000.0))
    get = reg.get_sample_value
    ev = {"endpoint": "ep", "variant": "v1", "model": ""}
    age = {**ev, "facet": "age", "facet_value": "40"}
    bias = "modeltap_analyzer_bias_metric"
    assert get(bias, {**age, "metric": "DPPL"}) == 0.33
    assert get(bias, {**age, "metric": "DI"}) == 0.44
    assert get(bias, {**age, "metric": "AD"}) == -0.11
    assert get(bias, {**age, "metric": "TE"}) is None  # undefined in this window
    assert get("modeltap_analyzer_bias_violations", {**age, "metric": "DPPL"}) == 1
    assert get("modeltap_analyzer_bias_violations", {**age, "metric": "DI"}) is None
    assert get("modeltap_analyzer_bias_rows", {**ev, "kind": "rows"}) == 120
    assert get("modeltap_analyzer_bias_rows", {**ev, "kind": "labelled"}) == 80

    label0 = {**ev, "label": "label0"}
    assert get("modeltap_analyzer_attribution_ndcg", label0) == 0.83
    shap = "modeltap_analyzer_feature_attribution"
    assert get(shap, {**label0, "feature": "income"}) == 0.21
    assert get(shap, {**label0, "feature": "debt_ratio"}) == 0.02
    assert get("modeltap_analyzer_attribution_violations", label0) == 1


def test_bias_and_attribution_without_findings() -> None:
    r = result(WITH_VIOLATIONS, 1000.0)
    r.sections["bias"] = BiasResult()  # an empty window
    r.sections["attribution"] = AttributionResult(error="ModelCallError: connection refused")
    reg = CollectorRegistry()
    AnalyzerCollector(reg).record(r)
    get = reg.get_sample_value
    ev = {"endpoint": "ep", "variant": "v1", "model": ""}
    assert get("modeltap_analyzer_bias_rows", {**ev, "kind": "rows"}) == 0
    names = {s.name for family in reg.collect() for s in family.samples}
    assert not names & {
        "modeltap_analyzer_bias_metric",
        "modeltap_analyzer_bias_violations",
        "modeltap_analyzer_attribution_ndcg",
        "modeltap_analyzer_feature_attribution",
        "modeltap_analyzer_attribution_violations",
    }
