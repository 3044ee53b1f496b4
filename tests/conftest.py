"""Fixtures shared by every test: real processes on 127.0.0.1 with ports picked at run time."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings

from harness.procs import PYTHON, REPO, Proc, free_port, wait_http
from sidecar.config import SpoolConfig
from sidecar.spool import disk_usage_ratio

pytest_plugins = ["pytester", "tests.support.loop_guard"]

# CI and `make test` run the property tests on a fixed seed, so a fresh machine runs exactly what
# CI ran; HYPOTHESIS_PROFILE=explore draws new examples (and fuzz/ runs atheris for longer hunts).
# No deadline: Hypothesis's per-example time limit (200 ms) is a timing assertion, and on a
# loaded machine it failed a pure-Python escaping example once that passed on every rerun.
settings.register_profile("fixed", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to start on a disk past the sidecar's default capture cutoff.

    The sidecars the tests start spool under the temp dir and, by design, stop capturing when
    its filesystem is fuller than ``spool.max_disk_usage_percent`` (75%): every capture test
    would then fail on records that were never written, with no word about the disk.
    """
    tmp = Path(tempfile.gettempdir())
    cutoff = SpoolConfig().max_disk_usage_percent / 100
    used = disk_usage_ratio(tmp)
    if used >= cutoff:
        pytest.exit(
            f"the filesystem of {tmp} is {used:.0%} full; the sidecars the tests start stop "
            f"capturing at {cutoff:.0%} (spool.max_disk_usage_percent): free some space first",
            returncode=1,
        )


@dataclass
class SidecarProc:
    """A sidecar started as its own process, with its spool and local store in a temp dir."""

    proc: Proc
    proxy_url: str
    admin_url: str
    spool: Path
    store: Path
    args: list[str] = field(default_factory=list)

    def captured_files(self) -> list[Path]:
        return sorted(p for p in self.store.rglob("*.jsonl*") if p.is_file())


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    """The test upstream server (echo, big, chunked, status, slow ...) as a real process."""
    port = free_port()
    proc = Proc("upstream", [PYTHON, "-m", "harness.upstream", str(port)], tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture
def demo_model(tmp_path: Path) -> Iterator[str]:
    """The demo iris model server as a real process."""
    port = free_port()
    proc = Proc(
        "demo-model", [PYTHON, "-m", "modeltap", "demo-model", "--port", str(port)], tmp_path
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture
def start_demo_model(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: start a demo model server (``--model credit``, ``--permute-feature X``, ...)."""
    procs: list[Proc] = []

    def start(*flags: str, name: str = "demo-model") -> str:
        port = free_port()
        cmd = [PYTHON, "-m", "modeltap", "demo-model", "--port", str(port), *flags]
        proc = Proc(name, cmd, tmp_path)
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/ping", proc, timeout=60)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for proc in procs:
            proc.stop()


MLSERVER_VENV = REPO / ".venv-mlserver"


@pytest.fixture
def mlserver(tmp_path: Path) -> Iterator[str]:
    """MLServer (its own venv, see `make mlserver-venv`) serving a scikit-learn iris model, V2 protocol."""
    python, binary = MLSERVER_VENV / "bin" / "python", MLSERVER_VENV / "bin" / "mlserver"
    assert binary.exists(), "MLServer is not installed: run `make test` (it builds .venv-mlserver)"
    models = tmp_path / "mlserver-models"
    subprocess.run(
        [str(python), str(REPO / "tests" / "mlserver" / "train.py"), str(models)],
        check=True,
        timeout=120,
    )
    http, grpc, metrics = free_port(), free_port(), free_port()
    (models / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics,
                "parallel_workers": 0, "debug": False, "metrics_dir": str(tmp_path / "mlserver-metrics"),
            }
        )
    )  # fmt: skip
    proc = Proc("mlserver", [str(binary), "start", str(models)], tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{http}/v2/models/iris/ready", proc, timeout=120)
        yield f"http://127.0.0.1:{http}"
    finally:
        proc.stop()


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., SidecarProc]]:
    """Factory: start a sidecar in front of ``upstream_url`` with extra ``--section.field`` flags."""
    procs: list[Proc] = []

    def start(
        upstream_url: str,
        *flags: str,
        name: str = "sidecar",
        spool: Path | None = None,
        store: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> SidecarProc:
        port, admin = free_port(), free_port()
        spool = spool or tmp_path / f"{name}-spool"
        store = store or tmp_path / f"{name}-store"
        args = [
            "--upstream.url",
            upstream_url,
            "--server.host",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.admin-host",
            "127.0.0.1",
            "--server.admin-port",
            str(admin),
            "--spool.dir",
            str(spool),
            "--store.destination",
            f"file://{store}",
            "--spool.max-segment-age-seconds",
            "0.5",
            *flags,
        ]
        proc = Proc(name, [PYTHON, "-m", "sidecar", *args], tmp_path, env=env)
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{admin}/readyz", proc)
        return SidecarProc(
            proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", spool, store, args
        )

    try:
        yield start
    finally:
        for p in procs:
            p.stop()
