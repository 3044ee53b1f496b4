"""Issue-level proof: traffic through the sidecar to the demo model, captured into SeaweedFS, analysed
by `modeltap monitor`; clean traffic gives no violation, injected faults give exactly theirs, and
Prometheus scrapes the analyzer's values."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris

from harness.metrics import scrape, value
from harness.procs import PYTHON, REPO, free_port, running
from harness.prometheus import prometheus
from harness.seaweed import SeaweedS3
from tests.conftest import SidecarProc
from tests.integration.test_delivery_s3 import s3_flags, wait_until
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def rows_to_csv(rows: list[list[str]]) -> bytes:
    return "\n".join(",".join(r) for r in rows).encode()


def scenarios(iris: np.ndarray) -> dict[str, list[list[str]]]:
    rng = np.random.default_rng(7)
    sample = iris[rng.choice(len(iris), 120, replace=False)]
    text = [[f"{v:.1f}" for v in row] for row in sample]
    shifted = [[*r[:2], f"{float(r[2]) + 2.5:.1f}", r[3]] for r in text]
    typed = [[r[0], "abc" if i % 4 == 0 else r[1], *r[2:]] for i, r in enumerate(text)]
    missing = [["" if i % 3 == 0 else r[0], *r[1:]] for i, r in enumerate(text)]
    no_column = [r[:3] for r in text]
    return {"iris-ok": text, "iris-shift": shifted, "iris-types": typed, "iris-missing": missing,
            "iris-nocol": no_column}  # fmt: skip


EXPECTED = {
    "iris-ok": set(),
    "iris-shift": {("petal_length", "baseline_drift_check")},
    "iris-types": {("sepal_width", "data_type_check")},
    "iris-missing": {("sepal_length", "completeness_check")},
    "iris-nocol": {("petal_width", "missing_column_check")},
}


def test_drift_and_data_quality_end_to_end(
    demo_model: str,
    start_sidecar: Callable[..., SidecarProc],
    s3_env: SeaweedS3,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    iris = load_iris().data
    train = tmp_path / "train.csv"
    np.savetxt(train, iris, delimiter=",", header=",".join(FEATURES), comments="", fmt="%.1f")
    store_flags = [
        "--store-endpoint-url",
        s3_env.endpoint_url,
        "--store-path-style",
        "--store-region",
        s3_env.region,
    ]
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", f"s3://{s3_bucket}/baselines/iris",
         "--progress", "never", *store_flags],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()

    for name, rows in scenarios(iris).items():
        sc = start_sidecar(
            demo_model, *s3_flags(s3_env, s3_bucket), "--capture.endpoint-name", name,
            "--capture.capture-errors", "true", name=name,
        )  # fmt: skip
        for i in range(0, len(rows), 4):
            status = call(sc.proxy_url, "POST", "/invocations", rows_to_csv(rows[i : i + 4]),
                          {"Content-Type": "text/csv"})[0]  # fmt: skip
            assert status in (200, 400)
        wait_until(
            lambda sc=sc: value(scrape(sc.admin_url), "modeltap_sidecar_upload_records_total") == 30
        )  # type: ignore[misc]
        assert sc.proc.stop() == 0

    port = free_port()
    config = tmp_path / "monitor.toml"
    endpoints = "".join(
        f'[[endpoints]]\nname = "{n}"\nbaseline = "s3://{s3_bucket}/baselines/iris"\n'
        for n in EXPECTED
    )
    config.write_text(
        f'[monitor]\ncaptures = "s3://{s3_bucket}/captures"\nreports = "s3://{s3_bucket}/reports"\n'
        f'window_minutes = 30\nend_offset_minutes = -5\ninterval_seconds = 3\nhost = "127.0.0.1"\nport = {port}\n'
        f'[store]\nendpoint_url = "{s3_env.endpoint_url}"\npath_style = true\nregion = "{s3_env.region}"\n'
        + endpoints
    )

    once = subprocess.run([PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once"],
                          cwd=REPO, capture_output=True, timeout=180)  # fmt: skip
    assert once.returncode == 0, once.stderr.decode()
    with contextlib.closing(s3_env.client()) as client:
        keys = [
            o["Key"]
            for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="reports/")["Contents"]
        ]
        for name, expected in EXPECTED.items():
            (key,) = [
                k
                for k in keys
                if k.startswith(f"reports/{name}/")
                and k.endswith("constraint_violations.json")
                and "/latest/" not in k  # the run's own directory, not its latest/ copy
            ]
            doc = orjson.loads(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
            got = {(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]}
            assert got == expected, (name, doc["violations"])

    monitor_cmd = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    with (
        running("monitor", monitor_cmd, tmp_path, f"http://127.0.0.1:{port}/healthz"),
        prometheus({"analyzer": [f"127.0.0.1:{port}"]}, tmp_path) as prom,
    ):
        prom.wait_value(
            'sum(modeltap_analyzer_violations{job="analyzer",endpoint="iris-ok"}) or vector(0)', 0
        )
        prom.wait_value(
            'modeltap_analyzer_violations{endpoint="iris-shift",check="baseline_drift_check",feature="petal_length"}',
            1,
        )
        prom.wait_value(
            'modeltap_analyzer_feature_drift_detected{endpoint="iris-shift",feature="petal_length"}',
            1,
        )
        prom.wait_value(
            'modeltap_analyzer_feature_drift_detected{endpoint="iris-ok",feature="petal_length"}', 0
        )
        prom.wait_value(
            'modeltap_analyzer_violations{endpoint="iris-nocol",check="missing_column_check",feature="petal_width"}',
            1,
        )
        prom.wait_value('modeltap_analyzer_rows{endpoint="iris-ok"}', 120)
