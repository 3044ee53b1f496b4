"""Scaffolding the benchmark scripts share, so each script keeps only what it measures.

The scripts run as ``python bench/<name>/run.py``, which puts bench/<name> on sys.path, not the
repository: each one inserts the repository root itself, then imports this as ``bench.common``.
Standard library only at import time, so monitor and report do not load the test fixtures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.procs import Proc
    from harness.seaweed import SeaweedS3

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
NOTES_HEADING = "### Notes"
# The sidecar's start-up write probe (modeltap/core/store/s3.py PROBE_KEY) is not a capture object.
PROBE_PREFIX = ".modeltap"

# -------------------------------------------------------------------------------------------------
# bench/RESULTS.md


def add_record_flags(p: argparse.ArgumentParser) -> None:
    """``--no-record``, and a hidden ``--results`` so a run can write elsewhere."""
    p.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md")
    p.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)


def write_section(path: Path, section: str, body: str) -> None:
    """Replace ``section`` of RESULTS.md (re-read right now), keeping its ``### Notes`` part.

    Re-read at the end of the run: another benchmark may have rewritten its own section meanwhile.
    """
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == section), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        old = lines[start:end]
        notes_at = next((i for i, line in enumerate(old) if line.rstrip() == NOTES_HEADING), None)
        notes = "".join(old[notes_at:]).rstrip("\n") + "\n" if notes_at is not None else ""
        block = body + ("\n" + notes if notes else "")
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + block + ("\n" + rest if rest else "")
    path.write_text(new)


# -------------------------------------------------------------------------------------------------
# child processes


def run_child(cmd: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Run a command; return (wall seconds, peak RSS MiB, its last stdout line as JSON).

    ``os.wait4`` gives the peak RSS of that child alone, which ``subprocess`` does not.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{stderr[-3000:]}")
    info: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return wall, usage.ru_maxrss / 1024, info


def stop_proc(proc: Proc | None, timeout: float = 15.0) -> None:
    """Stop by pid (SIGTERM, SIGKILL after ``timeout``); never raises, so cleanup goes on."""
    if proc is None:
        return
    try:
        proc.stop(timeout)
    except Exception as exc:  # pragma: no cover - best effort in finally blocks
        print(f"warning: stopping {proc.name} (pid {proc.pid}) failed: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            proc.kill()


# -------------------------------------------------------------------------------------------------
# the sidecar and its S3 store


def csv_body(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of CSV rows of random 4-decimal floats (seeded), ending in a newline.

    Random digits, so gzip sees about what it would see on real feature rows (not a repeated
    row, which would compress a hundredfold).
    """
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += ",".join(f"{rng.uniform(0, 10):.4f}" for _ in range(8)).encode() + b"\n"
    return bytes(out[: size - 1]) + b"\n"


def sidecar_env(s3: SeaweedS3, work: Path) -> dict[str, str]:
    """SeaweedFS's credentials; no AWS config file or instance metadata may override them."""
    return {
        "AWS_ACCESS_KEY_ID": s3.admin.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.admin.secret_key,
        "AWS_DEFAULT_REGION": s3.region,
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def sidecar_args(
    *,
    upstream: str,
    port: int,
    admin_port: int,
    spool: Path,
    destination: str,
    endpoint_url: str,
    region: str,
    percent: float,
    segment_age: float,
    retry_max: float,
) -> list[str]:
    """The sidecar's options: 127.0.0.1 only, capturing into a local S3 (path-style addressing)."""
    return [
        "--upstream.url", upstream,
        "--server.host", "127.0.0.1", "--server.port", str(port),
        "--server.admin-host", "127.0.0.1", "--server.admin-port", str(admin_port),
        "--spool.dir", str(spool),
        "--spool.max-segment-age-seconds", f"{segment_age:g}",
        "--capture.sample-percent", f"{percent:g}",
        "--store.destination", destination,
        "--store.endpoint-url", endpoint_url,
        "--store.path-style", "true",
        "--store.region", region,
        "--store.retry-max-seconds", f"{retry_max:g}",
    ]  # fmt: skip


def capture_objects(client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object listed under ``prefix/`` but the sidecar's write probe."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    for page in pages:
        for obj in page.get("Contents", []):
            if not obj["Key"].rsplit("/", 1)[-1].startswith(PROBE_PREFIX):
                yield obj
