"""Run `modeltap baseline` and `modeltap monitor --once` as users do: a child process each."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path

from harness.procs import PYTHON, REPO

NOW = dt.datetime.now(dt.UTC).replace(minute=30, second=0, microsecond=0)
START, END = NOW - dt.timedelta(minutes=30), NOW + dt.timedelta(minutes=30)


def modeltap(
    *argv: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``modeltap argv...`` in the repository; stdout and stderr captured as text."""
    return subprocess.run(
        [PYTHON, "-m", "modeltap", *argv], cwd=REPO, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def baseline(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return modeltap("baseline", *argv, "--progress", "never", env=env)


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


def monitor_once(
    config: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One window [START, END) per endpoint."""
    return modeltap(
        "monitor", "--config", str(config), "--once", "--start", START.isoformat(),
        "--end", END.isoformat(), *flags, env=env,
    )  # fmt: skip


_INFO = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO ")


def one_line(text: str) -> str:
    """The only line of ``text`` besides INFO log records (a failure shows all of them)."""
    lines = [line for line in text.strip().splitlines() if not _INFO.match(line)]
    assert len(lines) == 1, text
    assert "Traceback" not in text, text
    return lines[0]


def write_captures(
    store: Path, endpoint: str, rows: list[tuple[str, str]], at: dt.datetime = NOW
) -> None:
    """One capture object of CSV (input, output) pairs made ``at``, ids ``req-<i>``, as the
    sidecar stores them (SageMaker's data-capture JSON Lines under the hour's prefix)."""
    when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = []
    for i, (inp, out) in enumerate(rows):
        record = {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                  "data": inp, "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                   "data": out, "encoding": "CSV"},
            },
            "eventMetadata": {"eventId": f"event-{i}", "inferenceTime": when,
                              "inferenceId": f"req-{i}"},
            "eventVersion": "0",
        }  # fmt: skip
        lines.append(json.dumps(record))
    hour = store / endpoint / "AllTraffic" / at.strftime("%Y/%m/%d/%H")
    hour.mkdir(parents=True, exist_ok=True)
    (hour / at.strftime("%M-%S-000-test.jsonl")).write_text("\n".join(lines) + "\n")


def write_labels(store: Path, endpoint: str, labels: list[str], at: dt.datetime = NOW) -> None:
    """Ground truth for ``req-<i>`` in SageMaker's layout, under the hour they were collected."""
    lines = [
        json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"},
                    "eventMetadata": {"eventId": f"req-{i}"}, "eventVersion": "0"})
        for i, label in enumerate(labels)
    ]  # fmt: skip
    hour = store / endpoint / "AllTraffic" / at.strftime("%Y/%m/%d/%H")
    hour.mkdir(parents=True, exist_ok=True)
    (hour / "labels.jsonl").write_text("\n".join(lines) + "\n")
