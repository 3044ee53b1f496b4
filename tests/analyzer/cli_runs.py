"""Run `modeltap baseline` and `modeltap monitor --once` as users do: a child process each."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from tests.support.procs import PYTHON, REPO

NOW = dt.datetime.now(dt.UTC).replace(minute=30, second=0, microsecond=0)
START, END = NOW - dt.timedelta(minutes=30), NOW + dt.timedelta(minutes=30)


def modeltap(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``modeltap argv...`` in the repository; stdout and stderr captured as text."""
    return subprocess.run(
        [PYTHON, "-m", "modeltap", *argv], cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def baseline(*argv: str) -> subprocess.CompletedProcess[str]:
    return modeltap("baseline", *argv, "--progress", "never")


def built_baseline(tmp_path: Path, csv_text: str, name: str = "baseline") -> Path:
    """A data baseline of ``csv_text`` written by `modeltap baseline`."""
    train = tmp_path / f"{name}.csv"
    train.write_text(csv_text)
    out = tmp_path / name
    done = baseline(str(train), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    return out


def monitor_config(tmp_path: Path, endpoint: str, monitor: str = "") -> Path:
    """A monitor.toml: captures and reports under ``tmp_path``, one ``[[endpoints]]`` table."""
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path}/captures"\n'
        f'reports = "file://{tmp_path}/reports"\n{monitor}\n[[endpoints]]\n{endpoint}'
    )
    return config


def monitor_once(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """One window [START, END) per endpoint."""
    return modeltap(
        "monitor", "--config", str(config), "--once", "--start", START.isoformat(),
        "--end", END.isoformat(), *flags,
    )  # fmt: skip


def one_line(text: str) -> str:
    """The only line of ``text`` (a failure shows all of them)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text, text
    return lines[0]
