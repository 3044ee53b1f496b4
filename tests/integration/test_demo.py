"""`make run`'s command: the demo loop starts, captures traffic to local files, and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.metrics import scrape
from harness.procs import REPO, free_port
from tests.support.records import read_records

pytestmark = pytest.mark.integration


def test_demo_runs_the_loop_and_stops_its_children(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(4)]
    cmd = [
        sys.executable, "-m", "modeltap", "demo", "--dir", str(tmp_path / "run"),
        "--proxy-port", ports[0], "--admin-port", ports[1], "--model-port", ports[2],
        "--analyzer-port", ports[3], "--traffic-interval", "0.05", "--duration", "4",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text
    assert f"http://127.0.0.1:{ports[0]}/invocations" in text
    assert "captured files" in text
    records = read_records(tmp_path / "run" / "captures")
    assert len(records) >= 10
    assert all(key.startswith("iris/AllTraffic/") for key, _ in records)
    encodings = {r["captureData"]["endpointInput"]["encoding"] for _, r in records}
    assert encodings == {"CSV", "JSON"}
    # Every child is gone: nothing listens on the ports any more (TIME_WAIT aside).
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(port)))


def drift_flags(analyzer: str) -> dict[str, float]:
    """feature -> modeltap_analyzer_feature_drift_detected of the latest run (empty before one)."""
    try:
        samples = scrape(analyzer)
    except OSError:
        return {}
    return {
        dict(labels)["feature"]: v
        for (name, labels), v in samples.items()
        if name == "modeltap_analyzer_feature_drift_detected"
    }


def test_make_run_shows_drift_on_the_analyzer_then_stops(tmp_path: Path) -> None:
    """`make run` with a short drift schedule: the analyzer flags petal_length, and only it."""
    ports = [str(free_port()) for _ in range(4)]
    demo_args = (
        f"--dir {tmp_path / 'run'} --proxy-port {ports[0]} --admin-port {ports[1]} "
        f"--model-port {ports[2]} --analyzer-port {ports[3]} --traffic-interval 0.02 "
        "--drift-after 15 --monitor-interval 3 --window-seconds 20"
    )
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"DEMO_ARGS={demo_args}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    analyzer = f"http://127.0.0.1:{ports[3]}"
    flags: dict[str, float] = {}
    before_drift: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 150
        started = time.monotonic()
        while time.monotonic() < deadline and proc.poll() is None:
            flags = drift_flags(analyzer)
            if flags and time.monotonic() - started < 12:
                before_drift = flags
            if flags.get("petal_length") == 1.0 and sum(flags.values()) == 1.0:
                break
            time.sleep(1)
        assert flags.get("petal_length") == 1.0, flags
        assert {f for f, v in flags.items() if v} == {"petal_length"}, flags
        assert not any(before_drift.values()), before_drift
        with urllib.request.urlopen(f"{analyzer}/reports/iris/", timeout=5) as resp:
            index = resp.read().decode()
        href = re.search(r'href="([^"]+/report\.html)"', index)
        assert href is not None, index
        with urllib.request.urlopen(f"{analyzer}/reports/iris/{href.group(1)}", timeout=5) as resp:
            assert "script-src" not in resp.headers["Content-Security-Policy"]
            report = resp.read().decode()
        # The newest report leads with the drifted feature.
        sections = re.findall(r'<section class="feat" data-feature="([^"]+)"', report)
        assert sections and sections[0] == "petal_length", sections
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # make and the demo; the demo stops its children
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    text = out.decode()
    assert f"http://127.0.0.1:{ports[3]}/metrics" in text
    assert "did not stop" not in text, text[-3000:]  # every child stopped on SIGTERM
    assert "modeltap demo stopped" in text, text[-3000:]
    for port in ports:  # every child is gone
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(port)))


def test_demo_llm_streams_through_the_sidecar_and_its_traffic_drifts(tmp_path: Path) -> None:
    """`modeltap demo --llm`: streamed chat completions are recorded with their gen_ai fields;
    after the drift the prompts are longer and more answers are refusals."""
    from modeltap.demo_llm import REFUSAL

    ports = [str(free_port()) for _ in range(3)]
    cmd = [
        sys.executable, "-m", "modeltap", "demo", "--llm", "--dir", str(tmp_path / "run"),
        "--proxy-port", ports[0], "--admin-port", ports[1], "--model-port", ports[2],
        "--traffic-interval", "0.01", "--token-seconds", "0.001", "--drift-after", "4",
        "--duration", "8",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text
    assert f"http://127.0.0.1:{ports[0]}/v1" in text
    records = [r for _, r in read_records(tmp_path / "run" / "captures")]
    assert len(records) >= 30
    genai = [r["modeltap"]["genai"] for r in records]
    assert all(g["gen_ai.response.model"] == "demo-llm" for g in genai)
    assert all(g["gen_ai.usage.output_tokens"] > 0 for g in genai)
    streamed = [
        r for r in records if "stream" in r["modeltap"] and r["modeltap"]["stream"]["chunks"] > 1
    ]
    assert streamed and all(
        r["captureData"]["endpointOutput"]["encoding"] == "TEXT" for r in streamed
    )
    half = len(genai) // 2
    early, late = genai[: half // 2], genai[-half // 2 :]

    def mean(xs: list[int]) -> float:
        return sum(xs) / len(xs)

    def refusals(gs: list[dict[str, Any]]) -> int:
        return sum(
            g["gen_ai.output.messages"][0]["parts"][0]["content"].startswith(REFUSAL[:12])
            for g in gs
        )

    assert mean([g["gen_ai.usage.input_tokens"] for g in late]) > 2 * mean(
        [g["gen_ai.usage.input_tokens"] for g in early]
    )
    assert refusals(late) > refusals(early)
