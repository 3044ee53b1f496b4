"""The alert rules and the dashboard's queries on a real Prometheus (Debian's package) that
scrapes a real sidecar and the analyzer's exporter: every rule evaluates without error, every
query is accepted, and every metric they use is exposed by the processes."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from analyzer.exporter import AnalyzerCollector
from analyzer.results import WITH_VIOLATIONS
from harness.procs import Proc, free_port, wait_http
from tests.analyzer.test_exporter import ingest_counters, result
from tests.conftest import SidecarProc
from tests.deploy.test_dashboard import as_promql, dashboard, queries
from tests.deploy.test_prometheus import RULES, alerts
from tests.deploy.tools import system_tool

pytestmark = pytest.mark.integration

# Series that exist only once something happened (a labelled counter without preset children).
# The gen_ai families are labelled by model and appear with the first OpenAI-compatible exchange;
# tests/integration/test_llm_stream.py checks that Prometheus scrapes them.
CONDITIONAL = {
    "modeltap_sidecar_upload_failures",
    "modeltap_sidecar_genai_time_to_first_token_seconds",
    "modeltap_sidecar_genai_time_per_output_token_seconds",
    "modeltap_sidecar_genai_request_duration_seconds",
    "modeltap_sidecar_genai_usage_tokens",
    "modeltap_sidecar_genai_finish_reasons",
    "modeltap_sidecar_genai_responses",
}


def api(url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}/api/v1/{path}{query}", timeout=5) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    return doc["data"]


def query(url: str, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api(url, "query", query=promql)["result"]
    return result


@pytest.fixture
def analyzer_exporter() -> Iterator[str]:
    registry = CollectorRegistry()
    collector = AnalyzerCollector(registry)
    collector.record(result(WITH_VIOLATIONS, time.time()))
    collector.ingest = ingest_counters()  # POST /ground-truth enabled
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_rules_and_dashboard_on_real_prometheus(
    upstream: str,
    start_sidecar: Callable[..., SidecarProc],
    analyzer_exporter: str,
    tmp_path: Path,
) -> None:
    sc = start_sidecar(upstream, "--capture.sample-percent", "100")
    for _ in range(5):
        req = urllib.request.Request(f"{sc.proxy_url}/echo", data=b"1,2,3,4", method="POST",
                                     headers={"Content-Type": "text/csv"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n"
        f"  - job_name: iris\n    static_configs:\n      - targets: ['{urlsplit(sc.admin_url).netloc}']\n"
        f"  - job_name: modeltap-analyzer\n    static_configs:\n      - targets: ['{analyzer_exporter}']\n"
    )
    proc = Proc(
        "prometheus",
        [system_tool("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", proc)
        # Both targets scraped (the first scrape takes ~6 s), then two rule evaluations on data.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            up = query(url, "up == 1")
            if {r["metric"]["job"] for r in up} == {"iris", "modeltap-analyzer"}:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"targets not up: {api(url, 'targets')}")
        time.sleep(2.5)

        rules = [r for g in api(url, "rules")["groups"] for r in g["rules"]]
        assert {r["name"] for r in rules} == {a["alert"] for a in alerts()}
        for rule in rules:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

        for q in queries(dashboard()):
            query(url, as_promql(q))  # status success, or it raises

        used = {
            re.sub(r"_(bucket|total|sum|count)$", "", name)
            for text in [*queries(dashboard()), *(a["expr"] for a in alerts())]
            for name in re.findall(r"\bmodeltap_\w+", text)
        }
        for family in sorted(used - CONDITIONAL):
            found = query(url, f'count({{__name__=~"{family}(_bucket|_total|_sum|_count)?"}})')
            assert found, f"{family} is not exposed by the sidecar or the analyzer"
    finally:
        proc.stop()
