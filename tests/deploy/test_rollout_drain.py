"""A model pod stopped as the kubelet stops it fails no request and loses no answered capture.

Two pods, each rendered with `kubectl kustomize` and run as real processes (the model, the
sidecar with the rendered ConfigMap's settings, ports, spool and store moved to this test's,
each container's preStop command run as written):

- ``iris``: the demo Deployment of deploy/overlays/local (demo model + sidecar);
- ``mlserver``: tests/deploy/fixtures/mlserver-app, an MLServer Deployment that the
  sidecar-injection component gave its sidecar (MLServer from .venv-mlserver; capture at 100%).

Steady keep-alive traffic runs; termination begins; clients keep sending for PROPAGATION seconds
(what endpoints and load balancers take to drop the pod); then the containers are stopped:

- ``kubelet``: each container's preStop, then SIGTERM to that container (the kubelet's order);
- ``all-at-once``: every preStop, then SIGTERM to every container at the same moment.

Every request sent before termination began, and in the propagation window, must be answered
200, and every answered request must be in the store.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.procs import PYTHON, REPO, Proc, free_port, wait_http
from tests.deploy.tools import documents, render
from tests.support.records import read_records

pytestmark = pytest.mark.integration

PROPAGATION = 3.0  # seconds clients keep coming after termination began
CLIENTS = 3


FIXTURE = Path(__file__).parent / "fixtures" / "mlserver-app"
MLSERVER_VENV = REPO / ".venv-mlserver"

# A request: (path, body, content type) for the n-th request; unique bodies identify captures.
Request = Callable[[int], tuple[str, bytes, str]]


@dataclass
class Pod:
    """One rendered pod, ready to run: its containers (by role), settings and requests."""

    model: dict[str, Any]
    sidecar: dict[str, Any]
    grace: int
    env: dict[str, str]  # the sidecar's MODELTAP_SIDECAR_* settings as rendered
    request: Request


def _render(kustomization: str) -> list[dict[str, Any]]:
    return documents(render(kustomization))  # a path under deploy/, or an absolute one


def _deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    return found


def _config_env(
    docs: list[dict[str, Any]], c: dict[str, Any], pod: dict[str, Any]
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in c["envFrom"]:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            env.update(
                next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)[
                    "data"
                ]
            )
    for item in c.get("env", []):
        ref = item["valueFrom"]["fieldRef"]["fieldPath"]  # metadata.labels['x'] / annotations
        kind, key = ref.removeprefix("metadata.").split("[", 1)
        env[item["name"]] = pod["metadata"][kind][key.strip("[]'")]
    return env


def _iris_pod() -> Pod:
    docs = _render("overlays/local")
    pod = _deployment(docs, "iris")["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    return Pod(
        containers["model"],
        containers["sidecar"],
        pod["spec"]["terminationGracePeriodSeconds"],
        _config_env(docs, containers["sidecar"], pod),
        lambda n: ("/invocations", f"{n}.5,3.5,1.4,0.2".encode(), "text/csv"),
    )


def _mlserver_pod() -> Pod:
    docs = _render(str(FIXTURE))
    pod = _deployment(docs, "credit-model")["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}

    def infer(n: int) -> tuple[str, bytes, str]:
        row = [n + 0.5, 3.5, 1.4, 0.2]
        body = {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": row}]}
        return "/v2/models/iris/infer", json.dumps(body).encode(), "application/json"

    env = _config_env(docs, containers["modeltap-sidecar"], pod)
    env["MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCENT"] = "100"  # the fixture samples 5%
    return Pod(
        containers["mlserver"],
        containers["modeltap-sidecar"],
        pod["spec"]["terminationGracePeriodSeconds"],
        env,
        infer,
    )


def _start_model(name: str, pod: Pod, tmp_path: Path) -> tuple[Proc, int]:
    """The pod's model server as a process on a free port; waits until it is ready."""
    port = free_port()
    if name == "iris":
        args = list(pod.model["args"])
        args[args.index("--port") + 1] = str(port)
        proc = Proc("model", [PYTHON, "-m", "modeltap", *args], tmp_path)
        ready = f"http://127.0.0.1:{port}/ping"
    else:
        binary = MLSERVER_VENV / "bin" / "mlserver"
        assert binary.exists(), "MLServer is not installed: run `make test` (.venv-mlserver)"
        models = tmp_path / "mlserver-models"
        train = [
            str(MLSERVER_VENV / "bin" / "python"),
            str(REPO / "tests" / "mlserver" / "train.py"),
        ]
        subprocess.run([*train, str(models)], check=True, timeout=120)
        settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                    "metrics_port": free_port(), "parallel_workers": 0,
                    "metrics_dir": str(tmp_path / "mlserver-metrics")}  # fmt: skip
        (models / "settings.json").write_text(json.dumps(settings))
        proc = Proc("model", [str(binary), "start", str(models)], tmp_path)
        ready = f"http://127.0.0.1:{port}/v2/models/iris/ready"
    try:
        wait_http(ready, proc, timeout=120)
    except BaseException:
        proc.stop()
        raise
    return proc, port


def _pre_stop(container: dict[str, Any]) -> list[str]:
    """The container's preStop exec command; none when the manifest has none."""
    hook = container.get("lifecycle", {}).get("preStop")
    if hook is None:
        return []
    command: list[str] = hook["exec"]["command"]
    return command


class Traffic:
    """Keep-alive clients sending unique requests until told to stop; every outcome recorded."""

    def __init__(self, url: str, request: Request) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.request = request
        self.results: list[tuple[float, int, str]] = []  # (sent at, status or 0, body)
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _take(self) -> tuple[str, bytes, str]:
        with self._lock:
            self._next += 1
            return self.request(self._next)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            path, body, ctype = self._take()
            row = body.decode()
            sent = time.monotonic()
            status = 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
                conn.request("POST", path, body=body, headers={"Content-Type": ctype})
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
@pytest.mark.parametrize("name", ["iris", "mlserver"])
def test_rollout_fails_no_request_and_captures_every_answer(
    name: str, mode: str, tmp_path: Path
) -> None:
    pod = _iris_pod() if name == "iris" else _mlserver_pod()
    grace = pod.grace
    port, admin = free_port(), free_port()
    store = tmp_path / "store"
    env = {k: v for k, v in pod.env.items() if not k.startswith("MODELTAP_SIDECAR_STORE_")}
    model, model_port = _start_model(name, pod, tmp_path)
    env |= {
        "MODELTAP_SIDECAR_SERVER_HOST": "127.0.0.1",
        "MODELTAP_SIDECAR_SERVER_PORT": str(port),
        "MODELTAP_SIDECAR_SERVER_ADMIN_HOST": "127.0.0.1",
        "MODELTAP_SIDECAR_SERVER_ADMIN_PORT": str(admin),
        "MODELTAP_SIDECAR_UPSTREAM_URL": f"http://127.0.0.1:{model_port}",
        "MODELTAP_SIDECAR_SPOOL_DIR": str(tmp_path / "spool"),
        "MODELTAP_SIDECAR_STORE_DESTINATION": f"file://{store}",
    }
    sidecar: Proc | None = None
    traffic: Traffic | None = None
    try:
        sidecar = Proc("sidecar", [PYTHON, "-m", "modeltap", "sidecar"], tmp_path, env=env)
        wait_http(f"http://127.0.0.1:{admin}/readyz", sidecar)
        procs = {"model": model, "sidecar": sidecar}
        hooks = {"model": _pre_stop(pod.model), "sidecar": _pre_stop(pod.sidecar)}

        traffic = Traffic(f"http://127.0.0.1:{port}", pod.request)
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
        for role, proc in procs.items():  # the kubelet's SIGKILL comes at the grace period
            proc.wait(grace)
            assert role == "model" or proc.popen.returncode == 0, proc.log()[-3000:]
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
        f"{name} {mode}: {len(before)} requests before termination, {len(window)} in the "
        f"{PROPAGATION:.0f} s after it, {len(answered)} answered and captured"
    )
