"""The shipped manifests run as pods on the built images (`make images`, then `make pod-test`).

Each test renders a real overlay through a test overlay that moves only the ports, the store
endpoint, the images and the S3 keys (tests/support/podman.py), plays it with
`podman kube play --network host`, and talks to it as its users do: a real SeaweedFS as the
store, a real Prometheus scraping the pod's admin or metrics port.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import http.client
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris

from harness.procs import PYTHON, REPO, free_port
from harness.prometheus import prometheus
from harness.seaweed import SeaweedS3, running_seaweed
from tests.deploy.test_rollout_drain import Traffic
from tests.support.podman import (
    FIXED_PORTS,
    Played,
    built_image,
    kube_play,
    podman,
    render_test_overlay,
    require_images,
    wait_http_ok,
)

pytestmark = pytest.mark.pods

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
UID = 10001
EROFS = 30


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS of the test's own (the manifests fix the bucket and prefix)."""
    require_images()
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as s3:
        for bucket in ("modeltap", "modeltap-captures"):
            s3.create_bucket(bucket)
        yield s3


def free_ports() -> dict[int, int]:
    """A distinct free port for each of the manifests' fixed ports."""
    ports: dict[int, int] = {}
    while len(set(ports.values())) < len(FIXED_PORTS):
        ports = {p: free_port() for p in FIXED_PORTS}
    return ports


def objects(s3: SeaweedS3, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"]] = gzip.decompress(body) if item["Key"].endswith(".gz") else body
    return out


def records(s3: SeaweedS3, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (key, orjson.loads(line))
        for key, data in sorted(objects(s3, "modeltap", prefix).items())
        for line in data.splitlines()
        if line
    ]


@contextlib.contextmanager
def model_pod(s3: SeaweedS3, tmp: Path) -> Iterator[tuple[Played, dict[int, int], dict[str, Any]]]:
    """The local overlay's model pod (demo model + sidecar), ready; removed on exit."""
    ports = free_ports()
    keys = (s3.admin.access_key, s3.admin.secret_key)
    docs = render_test_overlay("overlays/local", tmp, ports, s3.endpoint_url, keys)
    iris = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "iris")
    with kube_play(docs, tmp, lambda d: d is iris) as played:
        played.wait_ready("iris-pod-0")
        yield played, ports, iris


def post(port: int, body: str, inference_id: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", "/invocations", body=body,
            headers={"Content-Type": "text/csv", "X-Inference-Id": inference_id},
        )  # fmt: skip
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def stop_pod(played: Played, pod: str, grace: float = 60.0) -> dict[str, int]:
    """SIGTERM to every container of the pod at once, SIGKILL after ``grace`` (`podman pod
    stop`, which leaves them stopped: a Deployment's restart policy would restart a `kill`ed
    one); their exit codes."""
    podman("pod", "stop", "--time", str(round(grace)), pod, timeout=grace + 60)
    names = [c["name"] for c in played.pods[pod]["containers"]]
    return {n: played.wait_exited(pod, n, 10) for n in names}


def test_model_pod_captures_to_s3_and_is_scraped(store: SeaweedS3, tmp_path: Path) -> None:
    rows = load_iris().data[::10]  # 15 rows, one request each
    with (
        model_pod(store, tmp_path) as (played, ports, _),
        prometheus({"sidecar": [f"127.0.0.1:{ports[9090]}"]}, tmp_path) as prom,
    ):
        sent = {}
        for i, row in enumerate(rows):
            body = ",".join(f"{v:.1f}" for v in row)
            status, answer = post(ports[8080], body, f"pod-{i}")
            assert status == 200, (answer, played.logs())
            sent[f"pod-{i}"] = (body, answer)
        # The scraped values: every request answered 2xx and captured (sample 100% here).
        prom.wait_value('sum(modeltap_sidecar_requests_total{status_class="2xx"})', len(rows))
        prom.wait_value("sum(modeltap_sidecar_capture_records_total)", len(rows))
        # The build it runs: the revision the image was built from (its OCI label).
        revision = podman("image", "inspect", "--format",
                          '{{ index .Labels "org.opencontainers.image.revision" }}',
                          built_image("sidecar")).stdout.strip()  # fmt: skip
        assert revision and revision != "unknown"
        prom.wait_value(f'modeltap_sidecar_build_info{{revision="{revision}"}}', 1)
        # Stopped as in a rollout: the sidecar seals and uploads its spool before it exits.
        assert stop_pod(played, "iris-pod-0") == {"model": 0, "sidecar": 0}, played.logs()
    got = records(store, "captures/iris/AllTraffic/")
    assert len(got) == len(rows), played.logs()
    for key, record in got:
        meta = record["eventMetadata"]
        when = dt.datetime.fromisoformat(meta["inferenceTime"].replace("Z", "+00:00"))
        assert key.startswith(f"captures/iris/AllTraffic/{when:%Y/%m/%d/%H}/"), key
        body, answer = sent[meta["inferenceId"]]
        # The record exactly as README.md documents it.
        assert record["captureData"] == {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                              "data": body, "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                               "data": answer, "encoding": "CSV"},
        }  # fmt: skip
        assert uuid.UUID(meta["eventId"])
        assert record["eventVersion"] == "0"
        assert record["modeltap"]["status"] == 200
        assert (record["modeltap"]["method"], record["modeltap"]["path"]) == (
            "POST",
            "/invocations",
        )


WRITE_PROBE = (
    "import os\n"
    "try:\n    open('/modeltap-write-probe', 'w')\n"
    "except OSError as e:\n    print(e.errno)\n"
    "print(os.getuid(), bool(os.statvfs('/').f_flag & os.ST_RDONLY))\n"
)


def assert_locked_down(played: Played, pod: str) -> None:
    """Every container's own process (pid 1 of its pid namespace, not just `exec`'s) runs as
    10001:10001, and its root filesystem is read-only: a write to / fails with EROFS."""
    for c in played.pods[pod]["containers"]:
        status = played.exec(pod, c["name"], "cat", "/proc/1/status")
        assert status.returncode == 0, status.stderr
        uids = next(ln for ln in status.stdout.splitlines() if ln.startswith("Uid:"))
        gids = next(ln for ln in status.stdout.splitlines() if ln.startswith("Gid:"))
        assert uids.split()[1:] == [str(UID)] * 4, (c["name"], uids)
        assert gids.split()[1:] == [str(UID)] * 4, (c["name"], gids)
        out = played.exec(pod, c["name"], "python", "-c", WRITE_PROBE)
        assert out.stdout.split() == [str(EROFS), str(UID), "True"], (c["name"], out)


def test_containers_run_as_10001_on_a_read_only_root(store: SeaweedS3, tmp_path: Path) -> None:
    with model_pod(store, tmp_path) as (played, _, _):
        assert_locked_down(played, "iris-pod-0")
        # The sidecar's spool is the writable emptyDir, owned by it.
        spool = played.exec("iris-pod-0", "sidecar", "python", "-c",
                            "import os; p='/var/lib/modeltap/spool/w'; open(p,'w').write('x'); os.remove(p)")  # fmt: skip
        assert spool.returncode == 0, spool.stderr


# -- the analyzer ----------------------------------------------------------------------------------
def capture_record(row: str, inference_time: str) -> dict[str, Any]:
    """A captured CSV request to the demo model, as the sidecar writes it (README.md)."""
    return {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                              "data": row, "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8",
                               "mode": "OUTPUT", "data": "setosa,0.98\n", "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": inference_time},
        "eventVersion": "0",
    }  # fmt: skip


def seed_window(s3: SeaweedS3, bucket: str, prefix: str, tmp: Path) -> int:
    """A baseline from iris and an hour-old-enough window of captured iris traffic (30 rows,
    half an hour ago: inside the shipped window of 60 minutes ending 5 minutes before a run),
    in the records' documented format. Returns the rows captured."""
    iris = load_iris().data
    train = tmp / "train.csv"
    np.savetxt(train, iris, delimiter=",", header=",".join(FEATURES), comments="", fmt="%.1f")
    baseline = tmp / "baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(baseline), "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    client = s3.client()
    for path in baseline.iterdir():
        client.put_object(Bucket=bucket, Key=f"baselines/iris/{path.name}", Body=path.read_bytes())
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    rows = iris[::5]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [orjson.dumps(capture_record(",".join(f"{v:.1f}" for v in row), stamp)) for row in rows]
    key = f"{prefix}/iris/AllTraffic/{when:%Y/%m/%d/%H}/seed-{uuid.uuid4().hex}.jsonl"
    client.put_object(Bucket=bucket, Key=key, Body=b"\n".join(lines) + b"\n")
    return len(rows)


def report_rows(s3: SeaweedS3, bucket: str) -> list[int]:
    found = objects(s3, bucket, "reports/iris/AllTraffic/")
    return [
        orjson.loads(body)["dataset"]["item_count"]
        for key, body in found.items()
        if key.endswith("/statistics.json") and "/latest/" not in key
    ]


def is_analyzer_deployment(doc: dict[str, Any]) -> bool:
    return bool(doc["kind"] == "Deployment" and doc["metadata"]["name"] == "modeltap-analyzer")


def test_analyzer_deployment_writes_reports_and_is_scraped(
    store: SeaweedS3, tmp_path: Path
) -> None:
    # The base's continuous analyzer (the s3 and dask overlays run the same Deployment).
    bucket = "modeltap-captures"
    rows = seed_window(store, bucket, "captures", tmp_path)
    ports = free_ports()
    keys = (store.admin.access_key, store.admin.secret_key)
    docs = render_test_overlay("base", tmp_path / "overlay", ports, store.endpoint_url, keys)
    with (
        kube_play(docs, tmp_path, is_analyzer_deployment) as played,
        prometheus({"analyzer": [f"127.0.0.1:{ports[9091]}"]}, tmp_path) as prom,
    ):
        wait_http_ok(f"http://127.0.0.1:{ports[9091]}/healthz", played)
        labels = 'job="analyzer",endpoint="iris",variant="AllTraffic"'
        try:
            prom.wait_value(f"modeltap_analyzer_rows{{{labels}}}", rows, timeout=120)
            prom.wait_value(f'modeltap_analyzer_run_status{{{labels},status="Completed"}}', 1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{played.logs()}") from None
        assert report_rows(store, bucket) == [rows], played.logs()
        assert_locked_down(played, "modeltap-analyzer-pod-0")
        assert stop_pod(played, "modeltap-analyzer-pod-0") == {"analyzer": 0}, played.logs()


def test_analyzer_cronjob_pod_writes_reports(store: SeaweedS3, tmp_path: Path) -> None:
    # The local overlay's CronJob: its job template run once, as the Job controller would.
    rows = seed_window(store, "modeltap", "captures", tmp_path)
    ports = free_ports()
    keys = (store.admin.access_key, store.admin.secret_key)
    docs = render_test_overlay(
        "overlays/local", tmp_path / "overlay", ports, store.endpoint_url, keys
    )
    with kube_play(docs, tmp_path, lambda d: d["kind"] == "CronJob") as played:
        code = played.wait_exited("modeltap-analyzer-job", "analyzer", timeout=180)
        assert code == 0, played.logs()
    assert report_rows(store, "modeltap") == [rows]


# -- a rollout -------------------------------------------------------------------------------------
PROPAGATION = 3.0  # seconds clients keep coming after termination began (endpoints catching up)


def iris_request(n: int) -> tuple[str, bytes, str]:
    """The n-th request of the rollout's traffic: a CSV row of its own, to find it captured."""
    return "/invocations", f"{n}.5,3.5,1.4,0.2".encode(), "text/csv"


def pre_stop(container: dict[str, Any]) -> list[str]:
    hook = container.get("lifecycle", {}).get("preStop")
    assert hook is not None and "exec" in hook, f"{container['name']} has no preStop exec hook"
    command: list[str] = hook["exec"]["command"]
    return command


def test_rollout_stops_the_pod_without_failing_or_losing_requests(
    store: SeaweedS3, tmp_path: Path
) -> None:
    with model_pod(store, tmp_path) as (played, ports, iris):
        spec = iris["spec"]["template"]["spec"]
        pod = "iris-pod-0"
        hooks = {c["name"]: pre_stop(c) for c in spec["containers"]}
        grace = float(spec["terminationGracePeriodSeconds"])
        traffic = Traffic(f"http://127.0.0.1:{ports[8080]}", iris_request)
        traffic.start()
        try:
            deadline = time.monotonic() + 30
            while traffic.answered() < 100 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert traffic.answered() >= 100, played.logs()
            # The kubelet: every container's preStop (in parallel), then SIGTERM to all at once,
            # SIGKILL at the end of the grace period.
            began = time.monotonic()
            results: dict[str, subprocess.CompletedProcess[str]] = {}

            def hook(name: str) -> None:
                results[name] = played.exec(pod, name, *hooks[name], timeout=grace)

            # Clients keep coming for PROPAGATION seconds (endpoints and load balancers are still
            # dropping the pod), whatever the hooks do; SIGTERM follows the hooks at once.
            stopper = threading.Timer(PROPAGATION, traffic.stop)
            stopper.start()
            threads = [threading.Thread(target=hook, args=(n,)) for n in hooks]
            for t in threads:
                t.start()
            for t in threads:
                t.join(grace)
            assert all(r.returncode == 0 for r in results.values()), results
            codes = stop_pod(played, pod, max(1.0, grace - (time.monotonic() - began)))
            stopper.join(PROPAGATION + 1)
        finally:
            traffic.stop()
        assert codes == {"model": 0, "sidecar": 0}, (codes, played.logs())
    results_ = traffic.results
    before = [r for r in results_ if r[0] < began]
    failed = [r for r in before if r[1] != 200]
    answered = {row for _, status, row in results_ if status == 200}
    captured = {
        rec["captureData"]["endpointInput"]["data"]
        for _, rec in records(store, "captures/iris/AllTraffic/")
    }
    print(f"rollout: {len(results_)} requests sent, {len(before)} before termination began, "
          f"{len(failed)} of those failed, {len(answered)} answered, "
          f"{len(answered & captured)} of the answered captured")  # fmt: skip
    assert not failed, failed[:5]
    assert all(status == 200 for _, status, _ in results_), "failed in the propagation window"
    assert answered <= captured, sorted(answered - captured)[:5]
