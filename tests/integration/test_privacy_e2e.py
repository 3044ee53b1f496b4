"""What reaches the store, and what the admin port shows: allow-listed headers only, redacted
payloads (marker and keyed hash, stable across restarts), unredactable payloads dropped."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from harness.metrics import scrape, value
from tests.conftest import SidecarProc
from tests.integration.test_proxy_e2e import call
from tests.support.records import read_records

pytestmark = pytest.mark.integration

SECRET = "tok-8c1f2e"  # appears in credentials and payload fields; must never be stored in clear
KEY = b"k" * 24 + b"-modeltap-test"
RECORDS = "modeltap_sidecar_capture_records_total"


def stored_bytes(store: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file())


def test_headers_allow_list_and_json_marker_redaction(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream,
        "--capture.sample-percent", "100",
        "--capture.headers", "X-Tenant,X-Custom",
        "--redact.input-json-paths", "instances[*].ssn,user",
        "--redact.output-json-paths", "instances[*].ssn,user",
    )  # fmt: skip
    body = orjson.dumps(
        {"instances": [{"ssn": SECRET, "x": 1}, {"ssn": SECRET, "x": 2}], "user": {"id": SECRET}}
    )
    headers = {
        "Content-Type": "application/json",
        "X-Inference-Id": "inf-1",
        "X-Target-Model": "m-a",
        "X-Tenant": "t1",
        "X-Other": SECRET,
        "Authorization": f"Bearer {SECRET}",
        "Cookie": f"session={SECRET}",
    }
    status, _, _, echoed = call(sc.proxy_url, "POST", "/echo", body, headers)
    assert status == 200 and echoed == body  # redaction touches the record, never the traffic
    # Not JSON although JSON paths are configured: dropped, not written in clear.
    status, *_ = call(
        sc.proxy_url,
        "POST",
        "/echo",
        b'{"ssn": "' + SECRET.encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200
    assert sc.proc.stop() == 0

    records = [r for _, r in read_records(sc.store)]
    assert len(records) == 1
    rec = records[0]
    expected = {
        "instances": [{"ssn": "[REDACTED]", "x": 1}, {"ssn": "[REDACTED]", "x": 2}],
        "user": "[REDACTED]",
    }
    assert orjson.loads(rec["captureData"]["endpointInput"]["data"]) == expected
    assert orjson.loads(rec["captureData"]["endpointOutput"]["data"]) == expected
    assert rec["eventMetadata"]["inferenceId"] == "inf-1"
    assert rec["modeltap"]["targetModel"] == "m-a"
    assert rec["modeltap"]["requestHeaders"] == {"x-tenant": "t1"}
    assert rec["modeltap"]["responseHeaders"] == {"x-custom": "a, b"}
    assert SECRET.encode() not in stored_bytes(sc.store)
    assert SECRET.encode() not in stored_bytes(sc.spool)


def test_csv_hash_redaction_is_stable_across_restarts(
    upstream: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    key_file = tmp_path / "hash.key"
    key_file.write_bytes(KEY + b"\n")
    flags = (
        "--capture.sample-percent", "100",
        "--redact.input-csv-columns", "0",
        "--redact.output-csv-columns", "0",
        "--redact.replacement", "hash",
        "--redact.hash-key-file", str(key_file),
    )  # fmt: skip
    rows = f"{SECRET},5.1,3.5\nother-id,6.7,3.0\n".encode()
    digests = {
        v: hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()[:16] for v in (SECRET, "other-id")
    }
    expected = f"{digests[SECRET]},5.1,3.5\n{digests['other-id']},6.7,3.0\n"
    stores = []
    for run in ("first", "second"):  # two processes, one key: the same digests
        sc = start_sidecar(upstream, *flags, name=run)
        assert call(sc.proxy_url, "POST", "/echo", rows, {"Content-Type": "text/csv"})[3] == rows
        # A payload no rule of this side reads (JSON under CSV-only rules): dropped and counted.
        call(sc.proxy_url, "POST", "/echo", b'{"id": 1}', {"Content-Type": "application/json"})
        deadline = time.monotonic() + 10  # the writer thread encodes within a flush interval
        while (
            sum(
                value(samples := scrape(sc.admin_url), RECORDS, outcome=o)
                for o in ("spooled", "dropped_redaction_failed")
            )
            < 2
        ):
            assert time.monotonic() < deadline, sc.proc.log()
            time.sleep(0.05)
        assert sc.proc.stop() == 0
        records = [r for _, r in read_records(sc.store)]
        assert [r["captureData"]["endpointInput"]["data"] for r in records] == [expected]
        assert [r["captureData"]["endpointOutput"]["data"] for r in records] == [expected]
        assert SECRET.encode() not in stored_bytes(sc.store)
        stores.append(sc.store)
    # Read while the second process still ran (both records went through its writer by then).
    assert value(samples, RECORDS, outcome="dropped_redaction_failed") == 1
    assert value(samples, RECORDS, outcome="spooled") == 1
    assert stores[0] != stores[1]


def test_admin_port_serves_no_captured_data(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, "--capture.sample-percent", "100")
    payload = f"{SECRET},1,2".encode()
    assert (
        call(sc.proxy_url, "POST", f"/echo?{SECRET}", payload, {"Content-Type": "text/csv"})[0]
        == 200
    )
    for path in (
        "/",
        "/captures",
        "/spool",
        "/store",
        "/records",
        "/metrics/x",
        "/../spool",
        "/healthz/x",
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{sc.admin_url}{path}", timeout=5)
        err.value.close()
        assert err.value.code == 404, path
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(
            urllib.request.Request(f"{sc.admin_url}/metrics", method="POST"), timeout=5
        )
    err.value.close()
    assert err.value.code == 405
    with urllib.request.urlopen(f"{sc.admin_url}/metrics", timeout=5) as resp:
        metrics = resp.read()
    assert SECRET.encode() not in metrics and b"/echo" not in metrics
    assert b"modeltap_sidecar_requests_total" in metrics
