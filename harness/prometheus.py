"""A real Prometheus (Debian's package) scraping test targets on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.procs import Proc, free_port, wait_http

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, object]]:
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as resp:
            doc = json.load(resp)
        assert doc["status"] == "success", doc
        return list(doc["data"]["result"])

    def wait_value(
        self, expr: str, expected: float, timeout: float = 30.0, as_bool: bool = False
    ) -> float:
        """Poll until ``expr`` has one sample equal to ``expected`` (the first scrape takes ~6 s).

        With ``as_bool`` the expression is a comparison and only its presence is checked.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            result = self.query(expr)
            if len(result) == 1:
                last = float(result[0]["value"][1])  # type: ignore[index]
                if as_bool or last == expected:
                    return last
            else:
                last = result
            time.sleep(0.5)
        raise AssertionError(f"{expr} = {last!r}, expected {expected} within {timeout}s")


@contextmanager
def prometheus(targets: dict[str, Sequence[str]], tmp: Path) -> Iterator[Prometheus]:
    """Run Prometheus scraping ``{job: [host:port, ...]}`` every second; stopped on exit."""
    port = free_port()
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: [{', '.join(repr(t) for t in hosts)}]"
        for job, hosts in targets.items()
    )
    config = tmp / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}\n"
    )
    proc = Proc(
        "prometheus",
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        tmp,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", proc)
        yield Prometheus(f"http://127.0.0.1:{port}")
    finally:
        proc.stop()
