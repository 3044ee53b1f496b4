"""The alerting rules, their unit tests, the plain Prometheus config and the example Alertmanager
config, checked by Debian's promtool and amtool; the PrometheusRule in the kustomize base holds
the same rules; every alert names metrics the code exports and has a runbook section."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.procs import REPO
from tests.deploy.regen_prometheusrule import PROMETHEUS_RULE, render
from tests.deploy.tools import (
    DEPLOY,
    assert_ok,
    by_labels,
    exported_labels,
    label_problems,
    run,
    system_tool,
    unexported_metrics,
)

PROM = DEPLOY / "prometheus"
RULES = PROM / "rules.yml"
RUNBOOK = REPO / "docs" / "runbook.md"


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    assert_ok(run([system_tool("promtool"), "check", "rules", str(RULES)]))


def test_promtool_test_rules() -> None:
    assert_ok(run([system_tool("promtool"), "test", "rules", "rules_test.yml"], cwd=PROM))


def test_rules_test_covers_every_alert() -> None:
    tested = set(re.findall(r"alertname: (\w+)", (PROM / "rules_test.yml").read_text()))
    assert tested == {a["alert"] for a in alerts()}


def test_promtool_check_config(tmp_path: Path) -> None:
    # Debian's prometheus 2.42 is built without Kubernetes service discovery ("field
    # kubernetes_sd_configs not found"): check everything else with the pod discovery swapped for
    # a static target.
    text = (PROM / "prometheus.yml").read_text()
    assert "kubernetes_sd_configs:\n      - role: pod\n" in text
    text = text.replace(
        "kubernetes_sd_configs:\n      - role: pod\n",
        'static_configs:\n      - targets: ["127.0.0.1:9090"]\n',
    )
    (tmp_path / "prometheus.yml").write_text(text)
    (tmp_path / "rules.yml").write_text(RULES.read_text())
    assert_ok(run([system_tool("promtool"), "check", "config", "prometheus.yml"], cwd=tmp_path))


def test_amtool_check_config() -> None:
    assert_ok(run([system_tool("amtool"), "check-config", str(PROM / "alertmanager.yml")]))


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ModeltapFeatureDrift", "category=data"], "model-owners"),
        (["alertname=ModeltapFeatureDriftDetected", "category=data"], "model-owners"),
        (["alertname=ModeltapDataQualityViolation", "category=data"], "model-owners"),
        (["alertname=ModeltapModelQualityViolation", "category=data"], "model-owners"),
        (["alertname=ModeltapEstimatedQualityDrop", "category=data"], "model-owners"),
        (["alertname=ModeltapVariantsDiverge", "category=data"], "model-owners"),
        (["alertname=ModeltapBiasDrift", "category=data"], "model-owners"),
        (["alertname=ModeltapAttributionDrift", "category=data"], "model-owners"),
        (
            ["alertname=ModeltapLabelCoverageLow", "category=platform", "severity=warning"],
            "platform-oncall",
        ),
        (
            ["alertname=ModeltapGroundTruthRejected", "category=platform", "severity=warning"],
            "platform-oncall",
        ),
        (
            ["alertname=ModeltapCaptureStopped", "category=platform", "severity=critical"],
            "platform-oncall",
        ),
        (
            ["alertname=ModeltapUploadBacklog", "category=platform", "severity=warning"],
            "platform-oncall",
        ),
    ],
)
def test_alertmanager_routes(labels: list[str], receiver: str) -> None:
    argv = [system_tool("amtool"), "config", "routes", "test",
            f"--config.file={PROM / 'alertmanager.yml'}", f"--verify.receivers={receiver}", *labels]  # fmt: skip
    assert_ok(run(argv))


# The metrics of findings about the model's data (drift, data and model quality, A/B, bias,
# attribution, LLM prompts and answers); alerts on anything else are about the pipeline (capture, labels, analyzer) and go
# to the platform.
FINDINGS = {
    "modeltap_analyzer_violations",
    "modeltap_analyzer_quality_violations",
    "modeltap_analyzer_quality_estimated_metric",
    "modeltap_analyzer_variant_drift_detected",
    "modeltap_analyzer_feature_drift_detected",
    "modeltap_analyzer_bias_violations",
    "modeltap_analyzer_attribution_violations",
    "modeltap_analyzer_llm_violations",
}


def test_data_alerts_carry_the_routing_label() -> None:
    for alert in alerts():
        finding = bool(FINDINGS & set(re.findall(r"\bmodeltap_\w+", alert["expr"])))
        assert (alert["labels"]["category"] == "data") == finding, alert["alert"]
        assert alert["labels"]["category"] in ("data", "platform"), alert["alert"]


def test_prometheusrule_matches_rules_file() -> None:
    assert PROMETHEUS_RULE.read_text() == render(), (
        "deploy/base/prometheusrule.yaml is stale: .venv/bin/python -m tests.deploy.regen_prometheusrule"
    )


def test_alerts_use_only_exported_metrics() -> None:
    for alert in alerts():
        assert not unexported_metrics(alert["expr"]), alert["alert"]


def test_every_alert_documents_itself_and_has_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    for alert in alerts():
        ann = alert["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(ann), alert["alert"]
        url = ann["runbook_url"]
        assert url.split("#")[0].endswith("docs/runbook.md"), url
        assert url.split("#")[1] in anchors, f"docs/runbook.md has no section #{url.split('#')[1]}"
        assert url.split("#")[1] == alert["alert"].lower()


def test_alerts_use_the_metrics_labels() -> None:
    labels = exported_labels()
    for alert in alerts():
        assert not label_problems(alert["expr"], labels), alert["alert"]
        # Annotations may only use labels the expression keeps.
        texts = " ".join(alert["annotations"].values())
        used = set(re.findall(r"\$labels\.(\w+)", texts))
        assert used <= by_labels(alert["expr"]), (alert["alert"], used - by_labels(alert["expr"]))
