"""The run report in a real browser: headless Chromium draws it and sees the drifted features.

Needs Debian's ``chromium`` (``make system-deps``); skipped when it is not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from harness.drift_scenario import DRIFTED
from tests.analyzer.test_report_html import Page, render, scenario_view

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
WIDTH, HEIGHT = 1280, 2000


def _chromium(tmp_path: Path, name: str, *args: str, timeout: float = 90.0) -> str:
    """Run headless Chromium with a fresh profile; its whole process group dies afterwards."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / f'profile-{name}'}",
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so its helpers can be ended with it
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium {name} did not finish within {timeout} s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, renderer) left behind
    assert proc.returncode == 0, err[-2000:]
    return out


def _png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) pixel rows of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return width, height, zlib.decompress(b"".join(idat))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render(scenario_view()), encoding="utf-8")
    return path


def test_screenshot_is_drawn(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    _chromium(
        tmp_path,
        "shot",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        report.as_uri(),
    )
    data = png.read_bytes()
    width, height, rows = _png(data)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(data) > 30_000, len(data)  # a blank 1280x2000 page compresses to a few KB
    # A single-colour image is a handful of distinct bytes whatever the row filters; text,
    # badges and SVG fills give many.
    assert len(set(rows)) > 64


def test_dom_shows_the_drifted_features_in_the_violations(report: Path, tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "dom", "--dump-dom", report.as_uri())
    p = Page(dom)
    assert "script" not in {t for t, _ in p.tags}
    for name in DRIFTED:
        assert name in p.text["violations"], name
    assert p.sections().index("violations") < p.sections().index("features")
    assert sum(1 for t, _ in p.tags if t == "svg") == 25
