"""A model pod stopped as the kubelet stops it fails no request and loses no answered capture.

The pod is the rendered deploy/overlays/local Deployment run as real processes: the demo model
with its container's args, the sidecar with the rendered ConfigMap's settings (ports, upstream,
spool and store moved to this test's), and each container's preStop command run as written.
Steady keep-alive traffic runs; termination begins; clients keep sending for PROPAGATION seconds
(what endpoints and load balancers take to drop the pod); then the containers are stopped:

- ``kubelet``: each container's preStop, then SIGTERM to that container (the kubelet's order);
- ``all-at-once``: every preStop, then SIGTERM to every container at the same moment.

Every request sent before termination began, and in the propagation window, must be answered
200, and every answered request must be in the store (sample 100% in the local overlay).
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import documents, render
from tests.support.procs import PYTHON, Proc, free_port, wait_http
from tests.support.records import read_records

pytestmark = pytest.mark.integration

PROPAGATION = 3.0  # seconds clients keep coming after termination began
CLIENTS = 3


def _pod() -> tuple[dict[str, Any], dict[str, str]]:
    docs = documents(render("overlays/local"))
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "iris"
    )
    spec = deployment["spec"]["template"]["spec"]
    sidecar = next(c for c in spec["containers"] if c["name"] == "sidecar")
    env: dict[str, str] = {}
    for source in sidecar["envFrom"]:
        if "configMapRef" in source:
            cm = next(
                d
                for d in docs
                if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == source["configMapRef"]["name"]
            )
            env.update(cm["data"])
    return spec, env


def _pre_stop(container: dict[str, Any]) -> list[str]:
    """The container's preStop exec command; none when the manifest has none."""
    hook = container.get("lifecycle", {}).get("preStop")
    if hook is None:
        return []
    command: list[str] = hook["exec"]["command"]
    return command


class Traffic:
    """Keep-alive clients sending unique iris rows until told to stop; every outcome recorded."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.results: list[tuple[float, int, str]] = []  # (sent at, status or 0, row)
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _row(self) -> str:
        with self._lock:
            self._next += 1
            return f"{self._next}.5,3.5,1.4,0.2"

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            row = self._row()
            sent = time.monotonic()
            status = 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
                conn.request("POST", "/invocations", body=row, headers={"Content-Type": "text/csv"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.results.append((sent, status, row))
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def answered(self) -> int:
        with self._lock:
            return sum(1 for _, status, _ in self.results if status == 200)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def _terminate(procs: dict[str, Proc], hooks: dict[str, list[str]], mode: str) -> None:
    """Run the preStop hooks and send SIGTERM in the given order; returns when all are sent."""

    def hook(name: str) -> None:
        if hooks[name]:
            subprocess.run(hooks[name], check=True, timeout=120)

    if mode == "kubelet":

        def stop_one(name: str) -> None:
            hook(name)
            procs[name].signal(signal.SIGTERM)

        threads = [threading.Thread(target=stop_one, args=(n,)) for n in procs]
    else:
        threads = [threading.Thread(target=hook, args=(n,)) for n in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if mode == "all-at-once":
        for proc in procs.values():
            proc.signal(signal.SIGTERM)


@pytest.mark.parametrize("mode", ["kubelet", "all-at-once"])
def test_rollout_fails_no_request_and_captures_every_answer(mode: str, tmp_path: Path) -> None:
    spec, env = _pod()
    containers = {c["name"]: c for c in spec["containers"]}
    grace = spec["terminationGracePeriodSeconds"]
    model_args = list(containers["model"]["args"])
    model_port = free_port()
    model_args[model_args.index("--port") + 1] = str(model_port)
    port, admin = free_port(), free_port()
    store = tmp_path / "store"
    env = {k: v for k, v in env.items() if not k.startswith("MODELTAP_SIDECAR_STORE_")}
    env |= {
        "MODELTAP_SIDECAR_SERVER_HOST": "127.0.0.1",
        "MODELTAP_SIDECAR_SERVER_PORT": str(port),
        "MODELTAP_SIDECAR_SERVER_ADMIN_HOST": "127.0.0.1",
        "MODELTAP_SIDECAR_SERVER_ADMIN_PORT": str(admin),
        "MODELTAP_SIDECAR_UPSTREAM_URL": f"http://127.0.0.1:{model_port}",
        "MODELTAP_SIDECAR_SPOOL_DIR": str(tmp_path / "spool"),
        "MODELTAP_SIDECAR_STORE_DESTINATION": f"file://{store}",
    }
    model = Proc("model", [PYTHON, "-m", "modeltap", *model_args], tmp_path)
    sidecar: Proc | None = None
    traffic: Traffic | None = None
    try:
        wait_http(f"http://127.0.0.1:{model_port}/ping", model, timeout=60)
        sidecar = Proc("sidecar", [PYTHON, "-m", "modeltap", "sidecar"], tmp_path, env=env)
        wait_http(f"http://127.0.0.1:{admin}/readyz", sidecar)
        procs = {"model": model, "sidecar": sidecar}
        hooks = {name: _pre_stop(containers[name]) for name in procs}

        traffic = Traffic(f"http://127.0.0.1:{port}")
        traffic.start()
        deadline = time.monotonic() + 60
        while traffic.answered() < 100:
            assert time.monotonic() < deadline, sidecar.log()
            time.sleep(0.05)

        began = time.monotonic()
        stopper = threading.Thread(target=_terminate, args=(procs, hooks, mode))
        stopper.start()
        time.sleep(PROPAGATION)  # the scenario: clients still routed here for this long
        traffic.stop()
        stopper.join(120)
        for name, proc in procs.items():  # the kubelet's SIGKILL comes at the grace period
            assert proc.wait(grace) == 0, f"{name}:\n{proc.log()[-3000:]}"
    finally:
        if traffic is not None:
            traffic.stop()
        if sidecar is not None:
            sidecar.stop()
        model.stop()

    before = [r for r in traffic.results if r[0] < began]
    window = [r for r in traffic.results if began <= r[0] < began + PROPAGATION]
    assert len(before) >= 100 and window
    failed = [
        (round(sent - began, 3), status) for sent, status, _ in before + window if status != 200
    ]
    assert not failed, f"failed requests (seconds after termination began, status): {failed[:20]}"

    answered = sorted(row for _, status, row in traffic.results if status == 200)
    captured = sorted(
        r["captureData"]["endpointInput"]["data"].strip() for _, r in read_records(store)
    )
    assert captured == answered
    with contextlib.suppress(FileNotFoundError):
        assert not list((tmp_path / "spool").rglob("*.jsonl*")), "segments left in the spool"
    print(
        f"{mode}: {len(before)} requests before termination, {len(window)} in the "
        f"{PROPAGATION:.0f} s after it, {len(answered)} answered and captured"
    )
