"""Streamed LLM answers through the real sidecar: the official ``openai`` client sees exactly what it
sees direct, every event reaches the client before the next exists, the records hold the stream
as text with its timing and the assembled completion, and a real Prometheus scrapes the gen_ai
metrics."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import orjson
import pytest

from harness.metrics import scrape, value
from harness.procs import PYTHON, Proc, free_port, wait_http
from harness.prometheus import prometheus
from tests.conftest import SidecarProc
from tests.support.records import read_records

pytestmark = pytest.mark.integration

CAPTURE_ALL = ("--capture.sample-percent", "100")


@pytest.fixture
def demo_llm(tmp_path: Path) -> Iterator[str]:
    """``modeltap demo-llm`` as a real process, streaming a token every millisecond."""
    port = free_port()
    cmd = [PYTHON, "-m", "modeltap", "demo-llm", "--port", str(port),
           "--token-seconds", "0.001", "--first-token-seconds", "0.01"]  # fmt: skip
    proc = Proc("demo-llm", cmd, tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@contextmanager
def client(base: str) -> Iterator[openai.OpenAI]:
    """The official client on ``base``/v1, closed after use (its connection pool too)."""
    with openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=30) as c:
        yield c


def chunks_seen(base: str, **kwargs: Any) -> list[dict[str, Any]]:
    """What the openai client's streaming parser yields, less the per-call id and time."""
    with client(base) as c:
        stream = c.chat.completions.create(stream=True, **kwargs)
        return [chunk.model_dump(exclude={"id", "created"}) for chunk in stream]


def answer(base: str, **kwargs: Any) -> dict[str, Any]:
    """A whole (not streamed) chat completion as the client parses it, less id and time."""
    with client(base) as c:
        return c.chat.completions.create(**kwargs).model_dump(exclude={"id", "created"})


def wait_records(sc: SidecarProc, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records = [r for _, r in read_records(sc.store)]
        if len(records) >= n or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


MESSAGES = [{"role": "user", "content": "Tell me how the sidecar measures time to first token"}]


def test_the_openai_client_sees_the_same_stream_direct_and_through_the_sidecar(
    demo_llm: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(demo_llm, *CAPTURE_ALL)
    kwargs: dict[str, Any] = {
        "model": "demo-llm",
        "messages": MESSAGES,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 40,
    }
    direct = chunks_seen(demo_llm, **kwargs)
    began = time.perf_counter()
    proxied = chunks_seen(sc.proxy_url, **kwargs)
    took_ms = (time.perf_counter() - began) * 1000  # the stream the record below is of
    assert proxied == direct
    assert len(direct) >= 10  # the role, 8 tokens, the usage
    text = "".join(c["choices"][0]["delta"]["content"] or "" for c in direct if c["choices"])
    usage = direct[-1]["usage"]

    # The same answer as one JSON document, and a legacy completion, also parse the same.
    plain = {"model": "demo-llm", "messages": MESSAGES}
    got = answer(sc.proxy_url, **plain)
    assert got == answer(demo_llm, **plain)
    with client(sc.proxy_url) as c:
        comp = c.completions.create(model="demo-llm", prompt="a b c d", stream=True)
        assert "".join(chunk.choices[0].text for chunk in comp if chunk.choices)

    records = wait_records(sc, 3)
    streamed = next(
        r
        for r in records
        if r["modeltap"].get("genai", {}).get("gen_ai.operation.name") == "chat"
        and r["modeltap"].get("stream", {}).get("chunks", 0) > 1
    )
    out = streamed["captureData"]["endpointOutput"]
    assert out["encoding"] == "TEXT"
    assert out["observedContentType"] == "text/event-stream"
    assert out["data"].startswith("data: {") and out["data"].endswith("data: [DONE]\n\n")
    stream = streamed["modeltap"]["stream"]
    assert stream["end"] == "complete"
    assert 0 < stream["timeToFirstByteMs"] <= stream["timeToLastByteMs"]
    assert stream["timeToLastByteMs"] < took_ms  # within the stream the client read
    assert stream["bytes"] == len(out["data"].encode())
    genai = streamed["modeltap"]["genai"]
    assert genai["gen_ai.operation.name"] == "chat"
    assert genai["gen_ai.request.model"] == "demo-llm"
    assert genai["gen_ai.response.model"] == "demo-llm"
    assert genai["gen_ai.request.temperature"] == 0.2
    assert genai["gen_ai.request.max_tokens"] == 40
    assert genai["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert genai["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert genai["gen_ai.response.finish_reasons"] == [direct[-2]["choices"][0]["finish_reason"]]
    (message,) = genai["gen_ai.output.messages"]
    assert message["parts"] == [{"type": "text", "content": text}]
    assert genai["timeToFirstTokenMs"] >= stream["timeToFirstByteMs"]
    assert genai["timePerOutputTokenMs"] > 0
    whole = next(r for r in records if r["captureData"]["endpointOutput"]["encoding"] == "JSON")
    assert (
        whole["modeltap"]["genai"]["gen_ai.output.messages"][0]["parts"][0]["content"]
        == (got["choices"][0]["message"]["content"])
    )


def _release(base: str, gate: str) -> None:
    urllib.request.urlopen(
        urllib.request.Request(f"{base}/release?id={gate}", method="POST")
    ).close()


def _gate_state(base: str, gate: str) -> str:
    with urllib.request.urlopen(f"{base}/gate?id={gate}", timeout=5) as resp:
        return resp.read().decode()


def _open_stream(proxy: str, path: str) -> tuple[http.client.HTTPConnection, Any]:
    u = urlsplit(proxy)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def test_each_event_reaches_the_client_before_the_next_is_produced(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    """At 100% capture: the upstream makes event i+1 only after the client has read event i
    (a sidecar that held events back would leave the client waiting: a 10 s timeout)."""
    sc = start_sidecar(upstream, *CAPTURE_ALL, "--genai.paths", "/sse-gated")
    conn, resp = _open_stream(sc.proxy_url, "/sse-gated?id=order&n=5")
    try:
        assert resp.status == 200
        seen = []
        for _ in range(5):
            _release(upstream, "order")
            line = resp.readline()  # blocks until the event arrives (10 s socket timeout)
            seen.append(orjson.loads(line.removeprefix(b"data: ")))
            assert resp.readline() == b"\n"
        assert [e["choices"][0]["delta"]["content"] for e in seen] == [f"t{i} " for i in range(5)]
        assert resp.read() == b"data: [DONE]\n\n"
    finally:
        conn.close()
    (record,) = wait_records(sc, 1)
    assert record["modeltap"]["stream"]["chunks"] >= 5
    parts = record["modeltap"]["genai"]["gen_ai.output.messages"][0]["parts"]
    assert parts[0]["content"] == "t0 t1 t2 t3 t4 "


def test_a_client_hanging_up_mid_stream_releases_the_model_and_is_recorded(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, *CAPTURE_ALL, "--genai.paths", "/sse-gated")
    conn, resp = _open_stream(sc.proxy_url, "/sse-gated?id=gone&n=50")
    for _ in range(2):
        _release(upstream, "gone")
        assert resp.readline().startswith(b"data: ")
        resp.readline()
    sock = conn.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()  # an abortive close (RST), as a client killed mid-stream
    resp.close()
    # Every further event the sidecar gets meets the closed client; the model server's
    # connection is then closed, which its next write sees.
    deadline = time.monotonic() + 15
    while _gate_state(upstream, "gone") != "client_gone":
        assert time.monotonic() < deadline, "the model server was never released"
        _release(upstream, "gone")
        time.sleep(0.05)
    (record,) = wait_records(sc, 1)
    stream = record["modeltap"]["stream"]
    assert stream["end"] == "client_disconnected"
    data = record["captureData"]["endpointOutput"]["data"]
    assert data.startswith('data: {"choices":[{"index":0,"delta":{"content":"t0 "}}]')
    assert scrape(sc.admin_url)[("modeltap_sidecar_client_aborts_total", frozenset())] == 1
    samples = scrape(sc.admin_url)
    assert (
        value(
            samples,
            "modeltap_sidecar_genai_responses_total",
            end="client_disconnected",
            model="gated",
        )
        == 1
    )


def test_a_stream_over_the_capture_limit_is_forwarded_whole_and_its_record_truncated(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(upstream, *CAPTURE_ALL, "--capture.max-payload-bytes", "10000")
    u = urlsplit(sc.proxy_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", "/sse-big?n=1000")
    body = conn.getresponse().read()
    conn.close()
    assert body.count(b"data: ") == 1001 and body.endswith(b"data: [DONE]\n\n")
    (record,) = wait_records(sc, 1)
    stream = record["modeltap"]["stream"]
    assert stream["truncated"] is True and stream["end"] == "complete"
    assert stream["bytes"] == len(body)
    data = record["captureData"]["endpointOutput"]["data"].encode()
    assert 0 < len(data) <= 10000 and body.startswith(data) and data.endswith(b"\n")
    samples = scrape(sc.admin_url)
    assert value(samples, "modeltap_sidecar_capture_truncated_streams_total") == 1
    assert value(samples, "modeltap_sidecar_capture_records_total", outcome="spooled") == 1


def test_patterns_redact_prompts_completions_and_the_raw_stream(
    upstream: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    """An e-mail address split across two deltas: the assembled completion has it replaced; a
    card number in one delta is replaced in the raw stream too; the prompt's phone number also."""
    sc = start_sidecar(
        upstream, *CAPTURE_ALL, "--genai.paths", "/sse-fixed",
        "--redact.patterns", "email,phone,card",
    )  # fmt: skip
    deltas = ["Write to jane.doe", "@example.com or pay with 4111 1111 1111 1111", " today."]
    query = "&".join(f"d={urllib.request.quote(d)}" for d in deltas)
    prompt = {"messages": [{"role": "user", "content": "call me on +44 20 7946 0958 please"}]}
    u = urlsplit(sc.proxy_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", f"/sse-fixed?{query}", body=orjson.dumps(prompt),
                 headers={"Content-Type": "application/json"})  # fmt: skip
    body = conn.getresponse().read()
    conn.close()
    assert b"4111 1111 1111 1111" in body  # the client gets the answer as it was
    (record,) = wait_records(sc, 1)
    line = orjson.dumps(record).decode()
    assert "4111" not in line and "7946" not in line and "jane.doe@example.com" not in line
    content = record["modeltap"]["genai"]["gen_ai.output.messages"][0]["parts"][0]["content"]
    assert content == "Write to [REDACTED] or pay with [REDACTED] today."
    assert record["modeltap"]["genai"]["gen_ai.usage.output_tokens"] == 3
    inp = orjson.loads(record["captureData"]["endpointInput"]["data"])
    assert inp["messages"][0]["content"] == "call me on [REDACTED] please"


def test_ollama_ndjson_is_captured_as_text_and_assembled(
    demo_llm: str, start_sidecar: Callable[..., SidecarProc]
) -> None:
    sc = start_sidecar(demo_llm, *CAPTURE_ALL, "--genai.paths", "/api/chat")
    u = urlsplit(sc.proxy_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    doc = {"model": "llama-demo", "messages": [{"role": "user", "content": "one two three"}]}
    conn.request("POST", "/api/chat", body=orjson.dumps(doc))
    lines = [orjson.loads(x) for x in conn.getresponse().read().splitlines()]
    conn.close()
    text = "".join(x["message"]["content"] for x in lines)
    (record,) = wait_records(sc, 1)
    assert record["captureData"]["endpointOutput"]["encoding"] == "TEXT"
    genai = record["modeltap"]["genai"]
    assert genai["gen_ai.output.messages"][0]["parts"][0]["content"] == text
    assert genai["gen_ai.response.finish_reasons"] == ["stop"]
    assert genai["gen_ai.usage.input_tokens"] == 3
    assert genai["gen_ai.usage.output_tokens"] == lines[-1]["eval_count"]


def test_prometheus_scrapes_time_to_first_token_and_tokens(
    demo_llm: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    """At 0% capture the gen_ai metrics still count every exchange (nothing is recorded);
    model names past genai.max_models count as 'other'."""
    sc = start_sidecar(demo_llm, "--capture.sample-percent", "0", "--genai.max-models", "1")
    out_tokens = in_tokens = 0
    for model in ("demo-llm", "demo-llm", "second-model"):
        with client(sc.proxy_url) as c:
            stream = c.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            usage = next(chunk.usage for chunk in list(stream) if chunk.usage)
        in_tokens += usage.prompt_tokens
        out_tokens += usage.completion_tokens
    with prometheus({"sidecar": [urlsplit(sc.admin_url).netloc]}, tmp_path) as prom:
        prom.wait_value(
            'modeltap_sidecar_genai_time_to_first_token_seconds_count{model="demo-llm"}', 2
        )
        prom.wait_value(
            'modeltap_sidecar_genai_time_to_first_token_seconds_count{model="other"}', 1
        )
        prom.wait_value('sum(modeltap_sidecar_genai_usage_tokens_total{type="output"})', out_tokens)
        prom.wait_value('sum(modeltap_sidecar_genai_usage_tokens_total{type="input"})', in_tokens)
        prom.wait_value('sum(modeltap_sidecar_genai_finish_reasons_total{reason="stop"})', 3)
        prom.wait_value("sum(modeltap_sidecar_genai_time_per_output_token_seconds_count)", 3)
        prom.wait_value('modeltap_sidecar_capture_records_total{outcome="spooled"}', 0)
