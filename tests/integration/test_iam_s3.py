"""Least privilege on a real S3: the policies in deploy/iam/ as SeaweedFS identities, and nothing more.

SeaweedFS has no IAM policy documents for static identities, but its per-identity actions take a
bucket/key prefix (``Write:bucket/captures/*``). ``seaweed_actions`` translates each AWS policy
file into those actions, so the rights tested here are the ones the policy files grant: adding a
permission to a policy file changes this test's identity with it (an action the translation does
not know fails the test).

Proven here, each component with its own keys:
- the sidecar starts (its start-up probe works with PutObject only), and every request's record
  lands under ``captures/``; with the same keys nothing can be read, listed, or written outside
  ``captures/``; a sidecar pointed at a prefix it may not write refuses to start, with a clear error;
- ``modeltap monitor --once`` reads those captures and a baseline and writes its reports under
  ``reports/``; POST /ground-truth stores labels under ``ground-truth/``; with the same keys the
  captures cannot be written or deleted, and nothing outside the listed prefixes can be read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from botocore.exceptions import ClientError
from sklearn.datasets import load_iris

from harness.procs import PYTHON, REPO, Proc, free_port, running, wait_http
from harness.seaweed import Identity, SeaweedS3, s3_client
from tests.conftest import SidecarProc
from tests.integration.test_delivery_s3 import s3_flags
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration

POLICIES = REPO / "deploy" / "iam"
BUCKET = "modeltap-captures"  # the bucket the policy files name
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TOKEN = "iam-test-token"

# AWS S3 permission -> SeaweedFS action. SeaweedFS's "Write" also covers multipart uploads and
# DeleteObject, so it is coarser than the AWS policy there (docs/security.md says so).
_ACTIONS = {
    "s3:PutObject": "Write",
    "s3:AbortMultipartUpload": "Write",
    "s3:DeleteObject": "Write",
    "s3:GetObject": "Read",
    "s3:ListBucket": "List",
}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def seaweed_actions(policy: dict[str, Any]) -> tuple[str, ...]:
    """The SeaweedFS identity actions granting what an AWS identity policy allows."""
    out: list[str] = []
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow", "only Allow statements are translated"
        for action in _as_list(st["Action"]):
            assert action in _ACTIONS, f"no SeaweedFS translation for {action}"
            verb = _ACTIONS[action]
            for resource in _as_list(st["Resource"]):
                path = resource.removeprefix("arn:aws:s3:::")
                if action == "s3:ListBucket":
                    # A bucket-level action: the prefixes are in the s3:prefix condition.
                    assert "/" not in path, resource
                    for prefix in _as_list(st["Condition"]["StringLike"]["s3:prefix"]):
                        out.append(f"List:{path}/{prefix}")
                else:
                    assert "/" in path, f"{action} must be scoped to keys, not {resource}"
                    # An exact key becomes a prefix: SeaweedFS matches "<verb>:<path>*" only.
                    out.append(f"{verb}:{path}" if path.endswith("*") else f"{verb}:{path}*")
    assert not any(a.endswith((":*", f"{BUCKET}/*")) for a in out), out
    return tuple(dict.fromkeys(out))


def load_policy(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((POLICIES / f"{name}-policy.json").read_text())
    return doc


SIDECAR = Identity(
    "modeltap-sidecar", "sidecarlpkey", "sidecarlpsecret", seaweed_actions(load_policy("sidecar"))
)
ANALYZER = Identity(
    "modeltap-analyzer",
    "analyzerlpkey",
    "analyzerlpsecret",
    seaweed_actions(load_policy("analyzer")),
)


def test_translation_of_the_policies() -> None:
    assert SIDECAR.actions == (
        f"Write:{BUCKET}/captures/*",
        f"Write:{BUCKET}/captures/.modeltap-write-check*",
    )
    assert set(ANALYZER.actions) == {
        *(f"List:{BUCKET}/{p}/*" for p in ("captures", "ground-truth", "reports", "baselines")),
        *(f"Read:{BUCKET}/{p}/*" for p in ("captures", "ground-truth", "reports", "baselines")),
        f"Write:{BUCKET}/reports/*",
        f"Write:{BUCKET}/ground-truth/*",
    }


@pytest.fixture(scope="module")
def narrow_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS of this module's own with the two narrow identities; stopped at the end."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed-iam"), identities=(SIDECAR, ANALYZER))
    try:
        server.start()
        server.create_bucket(BUCKET)
        with contextlib.closing(server.client()) as admin:
            admin.put_object(Bucket=BUCKET, Key="other/secret.txt", Body=b"not yours")
        yield server
    finally:
        server.cleanup()


def aws_child_env(identity: Identity, tmp: Path) -> dict[str, str]:
    """The environment that gives a child process exactly ``identity``'s keys."""
    return {
        "AWS_ACCESS_KEY_ID": identity.access_key,
        "AWS_SECRET_ACCESS_KEY": identity.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="module")
def no_aws_env() -> Iterator[None]:
    """No AWS_* variable of the developer's shell reaches a child (it would add to the keys)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        yield


@pytest.fixture
def aws_env(no_aws_env: None, tmp_path: Path) -> Callable[[Identity], dict[str, str]]:
    return lambda identity: aws_child_env(identity, tmp_path)


def denied(fn: Callable[[], object]) -> str:
    """The error code of a call that must fail with 403."""
    with pytest.raises(ClientError) as info:
        fn()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, info.value.response
    return str(info.value.response["Error"]["Code"])


def keys_under(s3: SeaweedS3, prefix: str) -> list[str]:
    with contextlib.closing(s3.client()) as admin:
        pages = admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def read(s3: SeaweedS3, key: str) -> bytes:
    with contextlib.closing(s3.client()) as admin:
        data: bytes = admin.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return data


@pytest.fixture(scope="module")
def captured(
    narrow_s3: SeaweedS3, no_aws_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Iris traffic through a sidecar that holds only the sidecar policy; its records in S3."""
    tmp = tmp_path_factory.mktemp("iam-capture")
    env = aws_child_env(SIDECAR, tmp)
    model_port, port, admin = free_port(), free_port(), free_port()
    model = Proc(
        "demo-model",
        [PYTHON, "-m", "modeltap", "demo-model", "--port", str(model_port)],
        tmp,
    )
    procs = [model]
    try:
        wait_http(f"http://127.0.0.1:{model_port}/ping", model, timeout=60)
        args = [
            "--upstream.url", f"http://127.0.0.1:{model_port}",
            "--server.host", "127.0.0.1", "--server.port", str(port),
            "--server.admin-host", "127.0.0.1", "--server.admin-port", str(admin),
            "--spool.dir", str(tmp / "spool"), "--spool.max-segment-age-seconds", "0.5",
            *s3_flags(narrow_s3, BUCKET), "--capture.endpoint-name", "iris",
        ]  # fmt: skip
        sidecar = Proc("sidecar", [PYTHON, "-m", "sidecar", *args], tmp, env=env)
        procs.append(sidecar)
        # Ready means the start-up store check (a probe put under captures/) passed.
        wait_http(f"http://127.0.0.1:{admin}/readyz", sidecar)
        rows = load_iris().data[::5]  # 30 rows, one request each
        start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        ids = []
        for i, row in enumerate(rows):
            body = ",".join(f"{v:.1f}" for v in row).encode()
            rid = f"iam-{i}"
            status, *_ = call(
                f"http://127.0.0.1:{port}", "POST", "/invocations", body,
                {"Content-Type": "text/csv", "X-Inference-Id": rid},
            )  # fmt: skip
            assert status == 200
            ids.append(rid)
        assert sidecar.stop() == 0, sidecar.log()[-3000:]  # drains the spool into S3
        end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        yield {"ids": ids, "rows": rows, "start": start, "end": end, "tmp": tmp}
    finally:
        for proc in procs:
            proc.stop()


def test_sidecar_with_the_sidecar_policy_captures_every_request(
    narrow_s3: SeaweedS3, captured: dict[str, Any]
) -> None:
    keys = keys_under(narrow_s3, "captures/iris/")
    assert keys and all(k.startswith("captures/iris/AllTraffic/") for k in keys), keys
    records = [orjson.loads(line) for k in keys for line in read(narrow_s3, k).splitlines()]
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == sorted(captured["ids"])
    # The probe object of the start-up check was removed again (SeaweedFS's Write includes
    # delete; on AWS the policy grants DeleteObject on exactly that key).
    assert keys_under(narrow_s3, "captures/.modeltap") == []


def test_sidecar_keys_cannot_read_list_or_write_elsewhere(
    narrow_s3: SeaweedS3, captured: dict[str, Any]
) -> None:
    (key, *_) = keys_under(narrow_s3, "captures/iris/")
    with contextlib.closing(s3_client(narrow_s3.endpoint_url, SIDECAR)) as c:
        denied(lambda: c.get_object(Bucket=BUCKET, Key=key))
        denied(lambda: c.head_object(Bucket=BUCKET, Key=key))
        denied(lambda: c.list_objects_v2(Bucket=BUCKET, Prefix="captures/"))
        denied(lambda: c.list_objects_v2(Bucket=BUCKET))
        denied(lambda: c.get_object(Bucket=BUCKET, Key="other/secret.txt"))
        for where in ("reports/x.json", "ground-truth/x.jsonl", "other/x", "capturesX/x"):
            put = functools.partial(c.put_object, Bucket=BUCKET, Key=where, Body=b"x")
            assert denied(put) == "AccessDenied"
        denied(lambda: c.create_bucket(Bucket="sidecar-made-this"))
        # The same keys still write under the prefix: the denials are the policy, not the keys.
        c.put_object(Bucket=BUCKET, Key="captures/direct-check", Body=b"x")
    assert read(narrow_s3, "captures/direct-check") == b"x"


def test_sidecar_pointed_outside_its_prefix_refuses_to_start(
    narrow_s3: SeaweedS3,
    upstream: str,
    start_sidecar: Callable[..., SidecarProc],
    aws_env: Callable[[Identity], dict[str, str]],
) -> None:
    flags = s3_flags(narrow_s3, BUCKET)
    flags[flags.index("--store.destination") + 1] = f"s3://{BUCKET}/reports"
    with pytest.raises(RuntimeError) as info:
        start_sidecar(upstream, *flags, env=aws_env(SIDECAR))
    assert "access denied" in str(info.value), str(info.value)[-2000:]


def _baseline(s3: SeaweedS3, tmp: Path) -> None:
    """Profile iris as the admin would (a CI job) and place it under baselines/iris."""
    train = tmp / "train.csv"
    np.savetxt(train, load_iris().data, delimiter=",", header=",".join(FEATURES), comments="",
               fmt="%.1f")  # fmt: skip
    out = tmp / "baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(out), "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    with contextlib.closing(s3.client()) as admin:
        for name in ("statistics.json", "constraints.json"):
            admin.put_object(
                Bucket=BUCKET, Key=f"baselines/iris/{name}", Body=(out / name).read_bytes()
            )


def _monitor_config(s3: SeaweedS3, path: Path, port: int | None = None) -> Path:
    serve = (
        f'window_minutes = 30\nend_offset_minutes = -5\ninterval_seconds = 2\nhost = "127.0.0.1"\n'
        f"port = {port}\n"
        if port is not None
        else ""
    )
    path.write_text(
        f'[monitor]\ncaptures = "s3://{BUCKET}/captures"\nreports = "s3://{BUCKET}/reports"\n'
        f"{serve}"
        f'[store]\nendpoint_url = "{s3.endpoint_url}"\npath_style = true\nregion = "{s3.region}"\n'
        f'[ground_truth]\ndestination = "s3://{BUCKET}/ground-truth"\n'
        f'[[endpoints]]\nname = "iris"\nbaseline = "s3://{BUCKET}/baselines/iris"\n'
    )
    return path


def test_analyzer_with_the_analyzer_policy_writes_reports(
    narrow_s3: SeaweedS3,
    captured: dict[str, Any],
    aws_env: Callable[[Identity], dict[str, str]],
    tmp_path: Path,
) -> None:
    _baseline(narrow_s3, tmp_path)
    config = _monitor_config(narrow_s3, tmp_path / "monitor.toml")
    run = subprocess.run(
        [PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once",
         "--start", captured["start"].isoformat(), "--end", captured["end"].isoformat()],
        cwd=REPO, capture_output=True, timeout=120, env={**os.environ, **aws_env(ANALYZER)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()[-4000:]
    reports = keys_under(narrow_s3, "reports/")
    (stats_key,) = [k for k in reports if k.endswith("/statistics.json") and "/latest/" not in k]
    assert stats_key.startswith("reports/iris/AllTraffic/")
    assert orjson.loads(read(narrow_s3, stats_key))["dataset"]["item_count"] == 30
    summary = orjson.loads(read(narrow_s3, stats_key.replace("statistics.json", "run.json")))
    assert summary["rows"] == 30 and summary["unparsed_records"] == 0
    assert "reports/iris/index.json" in reports and "reports/index.html" in reports


def test_analyzer_stores_posted_ground_truth(
    narrow_s3: SeaweedS3,
    captured: dict[str, Any],
    aws_env: Callable[[Identity], dict[str, str]],
    tmp_path: Path,
) -> None:
    _baseline(narrow_s3, tmp_path)
    port = free_port()
    config = _monitor_config(narrow_s3, tmp_path / "monitor.toml", port)
    cmd = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    env = {**aws_env(ANALYZER), "MODELTAP_GROUND_TRUTH_TOKEN": TOKEN}
    line = orjson.dumps(
        {
            "groundTruthData": {"data": "setosa", "encoding": "CSV"},
            "eventMetadata": {"eventId": "iam-0"},
            "eventVersion": "0",
        }
    )
    with running("monitor", cmd, tmp_path, f"http://127.0.0.1:{port}/healthz", env=env) as proc:
        status, _, _, body = call(
            f"http://127.0.0.1:{port}", "POST", "/ground-truth?endpoint=iris&variant=AllTraffic",
            line, {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/jsonlines"},
        )  # fmt: skip
        assert status == 200, (body, proc.log()[-3000:])
    stored = keys_under(narrow_s3, "ground-truth/iris/AllTraffic/")
    assert [read(narrow_s3, k) for k in stored] == [line + b"\n"]


def test_analyzer_keys_cannot_touch_captures_or_other_prefixes(
    narrow_s3: SeaweedS3, captured: dict[str, Any]
) -> None:
    (key, *_) = keys_under(narrow_s3, "captures/iris/")
    with contextlib.closing(s3_client(narrow_s3.endpoint_url, ANALYZER)) as c:
        assert c.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # reading is its job
        for where in ("captures/iris/forged.jsonl", "baselines/iris/statistics.json", "other/x"):
            put = functools.partial(c.put_object, Bucket=BUCKET, Key=where, Body=b"x")
            assert denied(put) == "AccessDenied"
        denied(lambda: c.delete_object(Bucket=BUCKET, Key=key))
        denied(lambda: c.get_object(Bucket=BUCKET, Key="other/secret.txt"))
        denied(lambda: c.list_objects_v2(Bucket=BUCKET))
        denied(lambda: c.list_objects_v2(Bucket=BUCKET, Prefix="other/"))
        denied(lambda: c.create_bucket(Bucket="analyzer-made-this"))
    assert read(narrow_s3, key)  # untouched
