"""The continuous analyzer stops on SIGTERM, as Kubernetes stops a pod (exit 0, promptly).

As a container's pid 1 a process ignores a signal it has no handler for, so without its own
SIGTERM handler the analyzer sat out every rollout's grace period until SIGKILL (exit 137,
seen in tests/deploy/test_pods.py); here, as an ordinary process, it died of the signal."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from harness.procs import PYTHON, REPO, free_port, running

pytestmark = pytest.mark.integration


def test_continuous_monitor_exits_0_on_sigterm(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(50)))
    baseline = tmp_path / "baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(baseline), "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    port = free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path / "captures"}"\n'
        f'reports = "file://{tmp_path / "reports"}"\nhost = "127.0.0.1"\nport = {port}\n'
        f'[[endpoints]]\nname = "iris"\nbaseline = "file://{baseline}"\n'
    )
    argv = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    with running("monitor", argv, tmp_path, f"http://127.0.0.1:{port}/healthz") as proc:
        proc.signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.log()
        assert "stopped on SIGTERM" in proc.log()
