"""The Grafana dashboard: well-formed, every query parses (promtool), every series it shows is a
metric the code exports, it shows every metric the alerts use, and the kustomize component ships
the same JSON to Grafana's dashboard sidecar."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.test_prometheus import alerts
from tests.deploy.tools import (
    DEPLOY,
    assert_ok,
    documents,
    exported_labels,
    label_problems,
    render,
    run,
    system_tool,
    unexported_metrics,
)

DASHBOARD = DEPLOY / "components" / "grafana-dashboard" / "modeltap.json"


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in doc["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(doc: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(doc) for t in p.get("targets", [])]
    exprs += [v["definition"] for v in doc["templating"]["list"] if v["type"] == "query"]
    return exprs


def as_promql(query: str) -> str:
    """A Grafana query with its variables filled in, as Prometheus would receive it."""
    m = re.fullmatch(r"label_values\((.+), \w+\)", query)
    if m:
        query = m.group(1)
    query = query.replace("$__rate_interval", "5m")
    return re.sub(r"\$\w+", ".*", query)


def test_dashboard_is_well_formed() -> None:
    doc = dashboard()
    assert doc["uid"] == "modeltap" and doc["title"]
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"] for v in doc["templating"]["list"]}
    for panel in panels(doc):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, (panel["title"], used - variables)


def test_every_query_parses(tmp_path: Path) -> None:
    rules = [{"record": f"modeltap:dashboard_query_{i}", "expr": as_promql(q)}
             for i, q in enumerate(queries(dashboard()))]  # fmt: skip
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert_ok(run([system_tool("promtool"), "check", "rules", str(path)]))


def test_dashboard_shows_only_exported_metrics() -> None:
    for query in queries(dashboard()):
        assert not unexported_metrics(query), query


def test_dashboard_uses_the_metrics_labels() -> None:
    labels = exported_labels()
    for query in queries(dashboard()):
        assert not label_problems(query, labels), query
    for panel in panels(dashboard()):
        for target in panel.get("targets", []):
            legend = set(re.findall(r"\{\{(\w+)\}\}", target.get("legendFormat", "")))
            kept = {lab for g in re.findall(r"\bby \(([^)]*)\)", target["expr"])
                    for lab in re.findall(r"\w+", g)}  # fmt: skip
            assert legend <= kept, (panel["title"], legend - kept)


def test_dashboard_shows_what_the_alerts_watch() -> None:
    shown = {
        re.sub(r"_(bucket|total|sum|count)$", "", n)
        for q in queries(dashboard())
        for n in re.findall(r"\bmodeltap_\w+", q)
    }
    for alert in alerts():
        for name in re.findall(r"\bmodeltap_\w+", alert["expr"]):
            assert re.sub(r"_(bucket|total|sum|count)$", "", name) in shown, (alert["alert"], name)


def test_component_ships_the_dashboard() -> None:
    docs = documents(render("overlays/s3"))
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in
            d["metadata"].get("labels", {})]  # fmt: skip
    assert len(maps) == 1
    assert json.loads(maps[0]["data"]["modeltap.json"]) == dashboard()
