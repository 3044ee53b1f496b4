"""The sidecar's counters as a real Prometheus scrapes them, and promtool's lint of /metrics."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.prometheus import PROMTOOL, prometheus
from modeltap import __version__
from tests.conftest import SidecarProc
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration


def test_prometheus_scrapes_the_sidecar_counters(
    demo_model: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    sc = start_sidecar(
        demo_model, "--capture.sample-percent", "100", "--capture.max-payload-bytes", "20"
    )
    for _ in range(7):
        assert (
            call(
                sc.proxy_url,
                "POST",
                "/invocations",
                b"5.1,3.5,1.4,0.2",
                {"Content-Type": "text/csv"},
            )[0]
            == 200
        )
    big = b"\n".join(
        [b"5.1,3.5,1.4,0.2"] * 3
    )  # over the 20-byte capture limit: forwarded, not captured
    assert call(sc.proxy_url, "POST", "/invocations", big, {"Content-Type": "text/csv"})[0] == 200
    assert call(sc.proxy_url, "POST", "/invocations", b"x", {"Content-Type": "image/png"})[0] == 415

    with prometheus({"sidecar": [urlsplit(sc.admin_url).netloc]}, tmp_path) as prom:
        prom.wait_value(
            'modeltap_sidecar_capture_records_total{job="sidecar",outcome="spooled"}', 7
        )
        prom.wait_value(
            'modeltap_sidecar_capture_records_total{job="sidecar",outcome="too_large"}', 1
        )
        prom.wait_value('modeltap_sidecar_requests_total{job="sidecar",status_class="2xx"}', 8)
        prom.wait_value('modeltap_sidecar_requests_total{job="sidecar",status_class="4xx"}', 1)
        prom.wait_value('modeltap_sidecar_upstream_duration_seconds_count{job="sidecar"}', 9)
        prom.wait_value('up{job="sidecar"}', 1)
        # The standard process metrics and the build, beside the sidecar's own.
        prom.wait_value('process_resident_memory_bytes{job="sidecar"} > 0', 1, as_bool=True)
        prom.wait_value('process_cpu_seconds_total{job="sidecar"} > 0', 1, as_bool=True)
        prom.wait_value(
            f'modeltap_sidecar_build_info{{job="sidecar",version="{__version__}",revision="unknown"}}',
            1,
        )

    with urllib.request.urlopen(f"{sc.admin_url}/metrics") as resp:
        text = resp.read()
    lint = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
