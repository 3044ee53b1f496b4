"""Traffic through the sidecar to the demo model, captured, then `modeltap monitor --once` over it."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris

from harness.procs import PYTHON, REPO, free_port, running
from harness.prometheus import prometheus
from modeltap import __version__
from tests.conftest import SidecarProc
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def captured_iris(
    demo_model: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> tuple[Path, Path, np.ndarray, dt.datetime, dt.datetime]:
    """Baseline from iris, then 30 rows of traffic captured through the sidecar."""
    iris = load_iris().data
    train = tmp_path / "train.csv"
    np.savetxt(train, iris, delimiter=",", header=",".join(FEATURES), comments="", fmt="%.1f")
    baseline = tmp_path / "baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(baseline), "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()

    sc = start_sidecar(
        demo_model, "--capture.sample-percent", "100", "--capture.endpoint-name", "iris"
    )
    sent = iris[::5]  # 30 rows, as 15 CSV requests of 2 rows
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for pair in sent.reshape(-1, 2, 4):
        body = "\n".join(",".join(f"{v:.1f}" for v in row) for row in pair).encode()
        assert (
            call(sc.proxy_url, "POST", "/invocations", body, {"Content-Type": "text/csv"})[0] == 200
        )
    assert sc.proc.stop() == 0
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    return baseline, sc.store, sent, start, end


def test_monitor_once_profiles_the_captured_window(
    demo_model: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    baseline, store, sent, start, end = captured_iris(demo_model, start_sidecar, tmp_path)
    reports = tmp_path / "reports"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{store}"\nreports = "file://{reports}"\n\n'
        f'[[endpoints]]\nname = "iris"\nbaseline = "file://{baseline}"\n'
    )
    run = subprocess.run(
        [PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once",
         "--start", start.isoformat(), "--end", end.isoformat()],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    (stats_path,) = [p for p in reports.rglob("statistics.json") if "latest" not in p.parts]
    assert stats_path.relative_to(reports).parts[:2] == ("iris", "AllTraffic")
    stats = orjson.loads(stats_path.read_bytes())
    assert stats["dataset"]["item_count"] == 30
    by_name = {f["name"]: f for f in stats["features"]}
    assert sorted(by_name) == sorted(FEATURES)
    mean = by_name["petal_length"]["numerical_statistics"]["mean"]
    assert abs(mean - np.round(sent[:, 2], 1).mean()) < 1e-9
    summary = orjson.loads((stats_path.parent / "run.json").read_bytes())
    assert summary["rows"] == 30 and summary["unparsed_records"] == 0


def test_monitor_rejects_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[monitor]\ncaptures = "file:///x"\nreports = "file:///y"\nwindow_minutez = 5\n'
        '[[endpoints]]\nname = "e"\nbaseline = "file:///b"\n'
    )
    run = subprocess.run([PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once"],
                         cwd=REPO, capture_output=True, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert (
        run.stderr.decode()
        .strip()
        .endswith("unknown key monitor.window_minutez (did you mean monitor.window_minutes?)")
    )
    assert len(run.stderr.decode().strip().splitlines()) == 1


def test_continuous_monitor_metrics_reach_prometheus(
    demo_model: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    baseline, store, _, _, _ = captured_iris(demo_model, start_sidecar, tmp_path)
    port = free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{store}"\nreports = "file://{tmp_path / "reports"}"\n'
        f'window_minutes = 30\nend_offset_minutes = -5\ninterval_seconds = 2\nhost = "127.0.0.1"\nport = {port}\n'
        f'[[endpoints]]\nname = "iris"\nbaseline = "file://{baseline}"\n'
    )
    monitor_cmd = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    with (
        running(
            "monitor",
            monitor_cmd,
            tmp_path,
            f"http://127.0.0.1:{port}/healthz",
            env={"MODELTAP_BUILD_REVISION": "abc123"},
        ),
        prometheus({"analyzer": [f"127.0.0.1:{port}"]}, tmp_path) as prom,
    ):
        labels = 'job="analyzer",endpoint="iris",variant="AllTraffic"'
        prom.wait_value(f"modeltap_analyzer_rows{{{labels}}}", 30)
        prom.wait_value(f'modeltap_analyzer_run_status{{{labels},status="Completed"}}', 1)
        prom.wait_value(
            f"modeltap_analyzer_last_success_timestamp_seconds{{{labels}}} > 0", 1, as_bool=True
        )
        prom.wait_value('process_resident_memory_bytes{job="analyzer"} > 0', 1, as_bool=True)
        prom.wait_value(
            f'modeltap_analyzer_build_info{{job="analyzer",version="{__version__}",revision="abc123"}}',
            1,
        )
