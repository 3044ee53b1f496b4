"""The sidecar in front of MLServer (a real model server) speaking the Open Inference Protocol."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from tests.conftest import SidecarProc
from tests.integration.test_proxy_e2e import call, stable
from tests.support.records import read_records

pytestmark = pytest.mark.integration


def test_sidecar_in_front_of_mlserver(
    mlserver: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        mlserver, "--capture.sample-percent", "100", "--capture.endpoint-name", "iris-v2"
    )
    body = orjson.dumps(
        {"inputs": [{"name": "predict", "shape": [2, 4], "datatype": "FP64",
                     "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}
    )  # fmt: skip
    headers = {"Content-Type": "application/json", "Host": "iris", "X-Inference-Id": "v2-1"}
    direct = call(mlserver, "POST", "/v2/models/iris/infer", body, headers)
    proxied = call(sc.proxy_url, "POST", "/v2/models/iris/infer", body, headers)
    assert proxied[0] == direct[0] == 200
    # MLServer answers with a fresh response id each time; everything else must be identical.
    d, p = orjson.loads(direct[3]), orjson.loads(proxied[3])
    assert d.pop("id") != p.pop("id")
    assert p == d
    assert p["outputs"][0]["data"] == [0, 2]

    # CloudEvents headers carry per-response ids; the rest must match exactly.
    def fixed(hs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, "<id>" if k in ("ce-id", "ce-requestid") else v) for k, v in stable(hs)]

    assert fixed(proxied[2]) == fixed(direct[2])
    assert call(sc.proxy_url, "GET", "/v2/health/ready")[0] == 200

    sc.proc.stop()
    records = read_records(sc.store)
    assert len(records) == 2  # the inference and the readiness probe
    key, rec = next((k, r) for k, r in records if r["modeltap"]["path"] == "/v2/models/iris/infer")
    assert key.startswith("iris-v2/AllTraffic/")
    assert rec["eventMetadata"]["inferenceId"] == "v2-1"
    assert rec["captureData"]["endpointInput"] == {
        "observedContentType": "application/json", "mode": "INPUT", "data": body.decode(), "encoding": "JSON",
    }  # fmt: skip
    assert rec["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert rec["captureData"]["endpointOutput"]["data"] == proxied[3].decode()
