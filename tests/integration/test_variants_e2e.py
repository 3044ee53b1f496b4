"""A/B: two variants of one endpoint behind two sidecars; the challenger's inputs differ in one
feature. The analyzer compares the variants with each other (variants.json and the
variant_drift metrics Prometheus scrapes) as well as each with the baseline."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris

from harness.procs import PYTHON, REPO, free_port, running
from harness.prometheus import prometheus
from tests.conftest import SidecarProc
from tests.integration.test_monitor_e2e import FEATURES
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration


def send(sc: SidecarProc, rows: np.ndarray) -> None:
    for pair in rows.reshape(-1, 3, 4):
        body = "\n".join(",".join(f"{v:.2f}" for v in row) for row in pair).encode()
        status = call(sc.proxy_url, "POST", "/invocations", body, {"Content-Type": "text/csv"})[0]
        assert status == 200


def test_variants_are_compared_with_each_other(
    demo_model: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    iris = load_iris().data
    train = tmp_path / "train.csv"
    np.savetxt(train, iris, delimiter=",", header=",".join(FEATURES), comments="", fmt="%.1f")
    baseline = tmp_path / "baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(baseline), "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()

    store = tmp_path / "captures"
    flags = ("--capture.sample-percent", "100", "--capture.endpoint-name", "iris")
    a = start_sidecar(demo_model, *flags, "--capture.variant-name", "A", name="a", store=store)
    b = start_sidecar(demo_model, *flags, "--capture.variant-name", "B", name="b", store=store)
    rng = np.random.default_rng(7)
    send(a, iris[rng.permutation(150)])
    challenger = iris[rng.permutation(150)].copy()
    challenger[:, 2] += 2.0  # petal_length moved in B's traffic only
    send(b, challenger)
    assert a.proc.stop() == 0 and b.proc.stop() == 0

    port = free_port()
    reports = tmp_path / "reports"
    config = tmp_path / "monitor.toml"
    endpoint = f'name = "iris"\nbaseline = "file://{baseline}"\n'
    config.write_text(
        f'[monitor]\ncaptures = "file://{store}"\nreports = "file://{reports}"\n'
        f'window_minutes = 30\nend_offset_minutes = -5\ninterval_seconds = 2\nhost = "127.0.0.1"\nport = {port}\n'
        f'[[endpoints]]\n{endpoint}variant = "A"\n[[endpoints]]\n{endpoint}variant = "B"\n'
    )
    cmd = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    with (
        running("monitor", cmd, tmp_path, f"http://127.0.0.1:{port}/healthz"),
        prometheus({"analyzer": [f"127.0.0.1:{port}"]}, tmp_path) as prom,
    ):
        labels = 'job="analyzer",endpoint="iris",variant="B",reference_variant="A"'
        prom.wait_value(
            f'modeltap_analyzer_variant_drift_detected{{{labels},feature="petal_length"}}', 1
        )
        for feature in ("sepal_length", "sepal_width", "petal_width"):
            prom.wait_value(
                f'modeltap_analyzer_variant_drift_detected{{{labels},feature="{feature}"}}', 0
            )
        ks = f'modeltap_analyzer_variant_drift{{{labels},feature="petal_length",statistic="ks_statistic"}}'
        assert prom.wait_value(f"{ks} > 0.5", 1, as_bool=True) > 0.5
    # a run every 2 s, each in its own directory: the newest is also under latest/
    runs = [p for p in reports.glob("iris/B/**/variants.json") if "latest" not in p.parts]
    assert runs and all(p.parent.name.endswith("Z") for p in runs)
    doc = orjson.loads((reports / "iris/B/latest/variants.json").read_bytes())
    assert doc["reference_variant"] == "A" and doc["rows"] == 150 and doc["reference_rows"] == 150
    assert doc["drifted"] == ["petal_length"]
    assert not list(reports.glob("iris/A/**/variants.json"))  # the reference has none
