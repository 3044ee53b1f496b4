"""The sidecar in front of a real HTTP server: faithful forwarding and the exact records captured."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import http.client
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from harness.metrics import scrape, value
from harness.upstream import pattern
from sidecar.sampling import hash_fraction
from tests.conftest import SidecarProc
from tests.support.records import read_records

pytestmark = pytest.mark.integration

VOLATILE = {"date", "connection", "keep-alive", "transfer-encoding"}


def call(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, list[tuple[str, str]], bytes]:
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.reason, resp.getheaders(), data
    finally:
        conn.close()


def stable(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Response headers that must match; the upstream's view of the request compares as a multiset
    (field order across different names carries no meaning, RFC 9110 section 5.3)."""
    out = []
    for k, v in headers:
        if k.lower() == "x-echo-headers":
            v = repr(sorted(orjson.loads(v)))
        if k.lower() not in VOLATILE:
            out.append((k.lower(), v))
    return out


CASES = [
    ("POST", "/echo", b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", {"Content-Type": "text/csv"}),
    ("POST", "/echo", b'{"instances": [[1, 2, 3, 4]]}', {"Content-Type": "application/json"}),
    ("POST", "/echo", pattern(3000), {"Content-Type": "application/x-protobuf"}),
    ("POST", "/echo", pattern(5 * 1024 * 1024 + 7), {"Content-Type": "application/octet-stream"}),
    ("PUT", "/echo/a%2Fb/c?x=1&x=2&y=%20z", b"put", {"Content-Type": "text/plain", "X-Multi": "1"}),
    ("GET", "/big?n=6500000", None, {}),
    ("GET", "/big?n=100", None, {"Accept-Encoding": "gzip"}),
    ("GET", "/chunked?n=200000", None, {}),
    ("GET", "/status/404", None, {}),
    ("POST", "/echo?status=500", b"boom", {"Content-Type": "text/plain"}),
    ("GET", "/status/599", None, {}),
    ("GET", "/status/204", None, {}),
    ("HEAD", "/big?n=1234", None, {}),
    ("GET", "/notype", None, {}),
    ("DELETE", "/echo", None, {}),
]


@pytest.mark.parametrize("capture", ["0", "100"])
def test_responses_identical_with_and_without_the_sidecar(
    upstream: str, start_sidecar: Callable[..., SidecarProc], capture: str
) -> None:
    sc = start_sidecar(
        upstream, "--capture.sample-percent", capture, "--capture.capture-errors", "true"
    )
    for method, path, body, case_headers in CASES:
        headers = {
            "Host": "model.example",
            **case_headers,
        }  # same Host both ways: upstream echoes it
        direct = call(upstream, method, path, body, headers)
        proxied = call(sc.proxy_url, method, path, body, headers)
        assert proxied[0] == direct[0], (method, path)
        assert proxied[1] == direct[1], (method, path)
        assert proxied[3] == direct[3], (method, path)
        assert stable(proxied[2]) == stable(direct[2]), (method, path)


def test_request_reaches_upstream_untouched_but_hop_by_hop(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream)
    sent = {
        "Content-Type": "text/csv",
        "X-Trace": "t-1",
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "hop-only",
        "Keep-Alive": "timeout=5",
        "Authorization": "Bearer secret",
    }
    status, _, headers, _ = call(sc.proxy_url, "POST", "/echo/p?q=%2F", b"1,2", sent)
    assert status == 200
    got = dict(headers)
    assert got["X-Echo-Method"] == "POST"
    assert got["X-Echo-Path"] == "/echo/p?q=%2F"
    seen = {k.lower(): v for k, v in orjson.loads(got["X-Echo-Headers"])}
    assert seen["x-trace"] == "t-1"
    assert seen["authorization"] == "Bearer secret"
    assert seen["content-length"] == "3"
    assert "x-hop" not in seen and "keep-alive" not in seen
    assert seen["host"] == urlsplit(sc.proxy_url).netloc  # the client's Host is kept


async def _post_many(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int = 16
) -> list[int]:
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(body: bytes, headers: dict[str, str]) -> int:
            async with sem, session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        return await asyncio.gather(*(one(b, h) for b, h in bodies))


def test_exact_records_for_a_sampled_run(
    demo_model: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        demo_model,
        "--capture.sample-percent", "100",
        "--capture.endpoint-name", "iris-prod",
        "--capture.variant-name", "blue",
    )  # fmt: skip
    before = time.time()
    csv_in = b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3"
    json_in = b'{"instances": [[5.9, 3.0, 5.1, 1.8]]}'
    r1 = call(
        sc.proxy_url,
        "POST",
        "/invocations",
        csv_in,
        {"Content-Type": "text/csv", "X-Inference-Id": "req-1"},
    )
    r2 = call(
        sc.proxy_url,
        "POST",
        "/invocations",
        csv_in,
        {"Content-Type": "text/csv", "Accept": "application/json"},
    )
    r3 = call(sc.proxy_url, "POST", "/invocations", json_in, {"Content-Type": "application/json"})
    r4 = call(
        sc.proxy_url, "POST", "/invocations", b"\x89PNG", {"Content-Type": "image/png"}
    )  # 415: not captured
    after = time.time()
    assert [r[0] for r in (r1, r2, r3, r4)] == [200, 200, 200, 415]
    assert sc.proc.stop() == 0

    records = read_records(sc.store)
    assert len(records) == 3
    for key, rec in records:
        parts = key.split("/")
        assert parts[:2] == ["iris-prod", "blue"]
        t = dt.datetime.strptime(
            rec["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=dt.UTC)
        assert int(before) <= t.timestamp() <= after
        assert parts[2:6] == [f"{t:%Y}", f"{t:%m}", f"{t:%d}", f"{t:%H}"]
        assert parts[6].endswith(".jsonl")
        assert rec["eventVersion"] == "0"
        assert len(rec["eventMetadata"]["eventId"]) == 36
        assert rec["modeltap"]["status"] == 200 and rec["modeltap"]["path"] == "/invocations"
        assert rec["modeltap"]["modelLatencyMs"] > 0
    by_id = {rec["eventMetadata"].get("inferenceId"): rec for _, rec in records}
    first = by_id["req-1"]["captureData"]
    assert first["endpointInput"] == {
        "observedContentType": "text/csv", "mode": "INPUT", "data": csv_in.decode(), "encoding": "CSV",
    }  # fmt: skip
    assert first["endpointOutput"] == {
        "observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": r1[3].decode(), "encoding": "CSV",
    }  # fmt: skip
    rest = [rec["captureData"] for _, rec in records if "inferenceId" not in rec["eventMetadata"]]
    mixed = next(c for c in rest if c["endpointInput"]["encoding"] == "CSV")
    assert mixed["endpointOutput"]["encoding"] == "JSON"  # CSV in, JSON out
    assert mixed["endpointOutput"]["data"] == r2[3].decode()
    as_json = next(c for c in rest if c["endpointInput"]["encoding"] == "JSON")
    assert as_json["endpointInput"]["data"] == json_in.decode()
    assert as_json["endpointOutput"]["data"] == r3[3].decode()


def test_binary_payloads_are_base64_and_errors_captured_when_asked(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream, "--capture.sample-percent", "100", "--capture.capture-errors", "true"
    )
    blob = pattern(777)
    assert (
        call(sc.proxy_url, "POST", "/echo", blob, {"Content-Type": "application/x-protobuf"})[0]
        == 200
    )
    assert (
        call(sc.proxy_url, "POST", "/echo?status=503", b"x", {"Content-Type": "text/csv"})[0] == 503
    )
    sc.proc.stop()
    records = [r for _, r in read_records(sc.store)]
    assert len(records) == 2
    binary = next(r for r in records if r["modeltap"]["status"] == 200)["captureData"]
    assert binary["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(binary["endpointInput"]["data"]) == blob
    assert base64.b64decode(binary["endpointOutput"]["data"]) == blob
    error = next(r for r in records if r["modeltap"]["status"] == 503)
    assert error["captureData"]["endpointInput"]["data"] == "x"


def test_input_only_capture_and_too_large_bodies(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream,
        "--capture.sample-percent",
        "100",
        "--capture.modes",
        "Input",
        "--capture.max-payload-bytes",
        "1000",
    )
    small, large = b"a" * 900, b"b" * 5000
    assert call(sc.proxy_url, "POST", "/echo", small, {"Content-Type": "text/csv"})[3] == small
    assert call(sc.proxy_url, "POST", "/echo", large, {"Content-Type": "text/csv"})[3] == large
    # Only the input is captured, so the size of a response does not matter.
    assert call(sc.proxy_url, "GET", "/big?n=5000")[0] == 200
    samples = scrape(sc.admin_url)
    assert value(samples, "modeltap_sidecar_capture_records_total", outcome="too_large") == 1
    sc.proc.stop()
    records = [r for _, r in read_records(sc.store)]
    assert len(records) == 2  # the small POST and the GET (input side only)
    assert all("endpointOutput" not in r["captureData"] for r in records)
    assert sorted(r["captureData"]["endpointInput"]["data"] for r in records) == [
        "",
        small.decode(),
    ]


def test_random_sampling_rate(upstream: str, start_sidecar: Callable[..., SidecarProc]) -> None:
    sc = start_sidecar(upstream, "--capture.sample-percent", "10")
    n = 3000
    statuses = asyncio.run(
        _post_many(f"{sc.proxy_url}/echo", [(b"1,2,3", {"Content-Type": "text/csv"})] * n)
    )
    assert statuses == [200] * n
    sc.proc.stop()
    captured = len(read_records(sc.store))
    # Binomial(3000, 0.1): mean 300, sd 16.4; 5 sd either side fails by chance ~1 in 2 million.
    assert 218 <= captured <= 382


def test_inference_id_sampling_is_consistent_across_retries(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream, "--capture.sample-percent", "30", "--capture.sampling", "inference_id"
    )
    ids = [f"order-{i}" for i in range(600)]
    bodies = [(i.encode(), {"Content-Type": "text/csv", "X-Inference-Id": i}) for i in ids]
    asyncio.run(_post_many(f"{sc.proxy_url}/echo", bodies + bodies))  # every request sent twice
    sc.proc.stop()
    got = [r["eventMetadata"]["inferenceId"] for _, r in read_records(sc.store)]
    expected = {i for i in ids if hash_fraction(i) < 0.3}
    assert 120 < len(expected) < 240
    assert sorted(got) == sorted(list(expected) * 2)


def test_upstream_down_and_slow(upstream: str, start_sidecar: Callable[..., SidecarProc]) -> None:
    from harness.procs import free_port

    dead = start_sidecar(f"http://127.0.0.1:{free_port()}", name="dead")
    status, _, _, body = call(
        dead.proxy_url, "POST", "/invocations", b"1", {"Content-Type": "text/csv"}
    )
    assert status == 502
    assert b"cannot connect to the model server" in body
    assert (
        value(scrape(dead.admin_url), "modeltap_sidecar_upstream_errors_total", reason="connect")
        == 1
    )

    slow = start_sidecar(upstream, "--upstream.timeout-seconds", "0.5", name="slow")
    status, _, _, body = call(slow.proxy_url, "GET", "/slow?s=3")
    assert status == 504
    assert b"did not answer in time" in body
    assert call(slow.proxy_url, "GET", "/slow?s=0.1")[0] == 200
    samples = scrape(slow.admin_url)
    assert value(samples, "modeltap_sidecar_upstream_errors_total", reason="timeout") == 1
    assert value(samples, "modeltap_sidecar_requests_total", status_class="5xx") == 1
    assert value(samples, "modeltap_sidecar_requests_total", status_class="2xx") == 1

    # A model server that dies mid-body: the client sees the cut (or a 502 when the cut comes before
    # the proxy sent headers), the sidecar counts it and lives on.
    with contextlib.suppress(http.client.IncompleteRead, ConnectionError):
        assert call(slow.proxy_url, "GET", "/cut")[0] == 502
    samples = scrape(slow.admin_url)
    cut = sum(
        value(samples, "modeltap_sidecar_upstream_errors_total", reason=r)
        for r in ("disconnected", "protocol")
    )
    assert cut == 1
    assert call(slow.proxy_url, "GET", "/ping")[0] == 200


def test_sigterm_loses_no_accepted_record(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(
        upstream, "--capture.sample-percent", "100", "--spool.max-segment-age-seconds", "3600",
        "--spool.flush-interval-seconds", "5",
    )  # fmt: skip
    n = 800
    bodies = [(f"{i},1,2".encode(), {"Content-Type": "text/csv"}) for i in range(n)]
    statuses = asyncio.run(_post_many(f"{sc.proxy_url}/echo", bodies, concurrency=32))
    assert statuses == [200] * n
    os.kill(sc.proc.pid, signal.SIGTERM)  # records are still queued or in the open segment
    assert sc.proc.wait(30) == 0
    got = sorted(
        int(r["captureData"]["endpointInput"]["data"].split(",")[0])
        for _, r in read_records(sc.store)
    )
    assert got == list(range(n))
    assert not list(sc.spool.rglob("*.jsonl*"))


def test_client_hanging_up_mid_stream_is_counted_not_an_error(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream)
    u = urlsplit(sc.proxy_url)
    for _ in range(3):  # a streamed (uncaptured, > 256 KiB) response the client never reads
        with socket.create_connection((u.hostname, u.port)) as s:
            s.sendall(b"GET /big?n=20000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1)
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while value(scrape(sc.admin_url), "modeltap_sidecar_client_aborts_total") < 3:
        assert time.monotonic() < deadline, sc.proc.log()
        time.sleep(0.1)
    assert call(sc.proxy_url, "GET", "/ping")[0] == 200
    assert sc.proc.stop() == 0
    assert "Traceback" not in sc.proc.log()


def test_http10_client_gets_a_streamed_body_until_close(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream)
    u = urlsplit(sc.proxy_url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(b"GET /chunked?n=100000 HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    # HTTP/1.1 in the status line, as RFC 9110 section 6.2 asks (and nginx does); no chunking
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower()
    assert orjson.loads(body)["blob"] == pattern(100000).hex()


def test_sigterm_drains_before_it_stops_accepting(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    """server.shutdown_delay_seconds: after SIGTERM, /readyz is 503 while new connections are still
    served (each answer closes its connection); an in-flight request finishes; then the port closes."""
    sc = start_sidecar(upstream, "--server.shutdown-delay-seconds", "4")
    slow: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(lambda: call(sc.proxy_url, "GET", "/slow?s=2")[0])
        deadline = time.monotonic() + 10
        while value(scrape(sc.admin_url), "modeltap_sidecar_client_connections") < 1:
            assert time.monotonic() < deadline, sc.proc.log()
            time.sleep(0.02)
        os.kill(sc.proc.pid, signal.SIGTERM)
        while call(sc.admin_url, "GET", "/readyz")[0] != 503:
            assert time.monotonic() < deadline, sc.proc.log()
            time.sleep(0.02)
        status, _, headers, _ = call(sc.proxy_url, "GET", "/ping")  # a client not yet told
        assert status == 200
        assert ("Connection", "close") in headers
        slow.append(in_flight.result(timeout=30))
    assert slow == [200]
    assert sc.proc.wait(30) == 0
    with pytest.raises(ConnectionRefusedError):
        call(sc.proxy_url, "GET", "/ping")
    assert "draining: serving for 4.0s more" in sc.proc.log()
