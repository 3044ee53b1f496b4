"""The analyzer's report port, started as `modeltap monitor` serves it, answers odd paths with 404.

A path holding a NUL byte (``/reports/%00x.html``) reached the local store, whose filesystem call
raised ValueError: a 500 and a traceback logged at ERROR. It names no report, so it is a 404.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness.procs import PYTHON, REPO, free_port, running
from tests.analyzer.cli_runs import one_line

pytestmark = pytest.mark.integration


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_report_paths_with_control_characters_are_404(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b\n1,x\n2,y\n3,x\n")
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(tmp_path / "train.csv"),
         "-o", str(tmp_path / "baseline"), "--progress", "never", "-q"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    reports = tmp_path / "reports"
    (reports / "ep").mkdir(parents=True)
    (reports / "ep" / "index.html").write_text("<p>runs</p>")
    port = free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path}/captures"\nreports = "file://{reports}"\n'
        f'host = "127.0.0.1"\nport = {port}\ninterval_seconds = 3600\n\n'
        f'[[endpoints]]\nname = "ep"\nbaseline = "file://{tmp_path / "baseline"}"\n'
    )
    base = f"http://127.0.0.1:{port}"
    argv = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    with running("monitor", argv, tmp_path, f"{base}/healthz") as proc:
        assert _status(f"{base}/reports/ep/index.html") == 200  # the port does serve reports
        for path in (
            "/reports/%00x.html",
            "/reports/ep/%00",
            "/reports/%00x",
            "/reports/a%0Ab.json",
        ):
            assert _status(base + path) == 404, path
        assert _status(f"{base}/healthz") == 200
        log = proc.log()
    assert "Traceback" not in log and " ERROR " not in log, log


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a\n1\n2\n")
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(tmp_path / "train.csv"),
         "-o", str(tmp_path / "baseline"), "--progress", "never", "-q"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "monitor.toml"
        config.write_text(
            f'[monitor]\ncaptures = "file://{tmp_path}/c"\nreports = "file://{tmp_path}/r"\n'
            f'host = "127.0.0.1"\nport = {port}\n\n'
            f'[[endpoints]]\nname = "ep"\nbaseline = "file://{tmp_path / "baseline"}"\n'
        )
        run = subprocess.run(
            [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in one_line(run.stderr)
