"""The LLM section's Prometheus metrics; labels are bounded: descriptor names are a fixed set,
category values are capped at ``max_classes`` per descriptor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily

from analyzer.llm.run import LLMResult
from analyzer.section import Ident


def llm_metrics(
    results: Mapping[Ident, LLMResult], max_classes: int
) -> Iterator[GaugeMetricFamily]:
    labels = ["endpoint", "variant", "model"]
    exchanges = GaugeMetricFamily("modeltap_analyzer_llm_exchanges",
                                  "OpenAI-compatible exchanges the latest LLM run read.",
                                  labels=labels)  # fmt: skip
    unreadable = GaugeMetricFamily("modeltap_analyzer_llm_unreadable_records",
                                   "Records of the latest LLM run that held no readable exchange, "
                                   "by reason.", labels=[*labels, "reason"])  # fmt: skip
    mean = GaugeMetricFamily("modeltap_analyzer_llm_descriptor_mean",
                             "Mean of a numeric descriptor over the latest window (refusal, "
                             "json_valid: the share).", labels=[*labels, "descriptor"])  # fmt: skip
    distance = GaugeMetricFamily("modeltap_analyzer_llm_drift_distance",
                                 "A descriptor's L-infinity distance to the baseline (the drift "
                                 "check's measure).", labels=[*labels, "descriptor"])  # fmt: skip
    detected = GaugeMetricFamily("modeltap_analyzer_llm_drift_detected",
                                 "1 when a descriptor's drift test rejected 'same distribution' "
                                 "(multiple-testing corrected), else 0.",
                                 labels=[*labels, "descriptor"])  # fmt: skip
    violations = GaugeMetricFamily("modeltap_analyzer_llm_violations",
                                   "1 for each descriptor constraint violated in the latest run.",
                                   labels=[*labels, "descriptor", "check"])  # fmt: skip
    shares = GaugeMetricFamily("modeltap_analyzer_llm_category_ratio",
                               "Share of the window's exchanges per value of model, finish_reason, "
                               "prompt_script and completion_script (most frequent values).",
                               labels=[*labels, "descriptor", "value"])  # fmt: skip
    for ident, result in sorted(results.items()):
        if result.error:
            continue
        exchanges.add_metric(list(ident), float(result.exchanges))
        for reason, n in sorted(result.unreadable.items()):
            unreadable.add_metric([*ident, reason], float(n))
        for name, value in sorted(result.means.items()):
            mean.add_metric([*ident, name], value)
        for name, feat in sorted(((result.evaluation or {}).get("features") or {}).items()):
            measures = feat.get("measures") or {}
            if isinstance(measures.get("distance"), float):
                distance.add_metric([*ident, name], measures["distance"])
            decision = feat.get("decision")
            if decision is not None:
                detected.add_metric([*ident, name], 1.0 if decision.get("drift") else 0.0)
        for v in result.violations:
            violations.add_metric([*ident, v["feature_name"], v["constraint_check_type"]], 1.0)
        for name, by_value in sorted(result.shares.items()):
            top = sorted(by_value.items(), key=lambda kv: (-kv[1], kv[0]))[:max_classes]
            for category, share in top:
                shares.add_metric([*ident, name, category], share)
    yield from (exchanges, unreadable, mean, distance, detected, violations, shares)
