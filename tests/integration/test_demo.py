"""`make run`'s command: the demo loop starts, captures traffic to local files, and stops cleanly."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import REPO, free_port
from tests.support.records import read_records

pytestmark = pytest.mark.integration


def test_demo_runs_the_loop_and_stops_its_children(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    cmd = [
        sys.executable, "-m", "modeltap", "demo", "--dir", str(tmp_path / "run"),
        "--proxy-port", ports[0], "--admin-port", ports[1], "--model-port", ports[2],
        "--traffic-interval", "0.05", "--duration", "4",
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
