"""The bench harness: what the benchmark scripts share, so each script keeps only what it measures.

Child runs, CPU accounting from /proc, machine facts, wrk runs and their parsing, the nginx origin,
the sidecar's options, and the one ``write_section`` of bench/RESULTS.md. Processes, ports and
SeaweedFS come from the dev harness (``harness/``) that the tests use too.

The scripts run as ``python bench/<name>/run.py``, which puts bench/<name> on sys.path, not the
repository: each one inserts the repository root itself, then imports this as ``bench.common``.
Standard library only at import time, so monitor and report do not load SeaweedFS or boto.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.procs import Proc, free_port, start_ready

if TYPE_CHECKING:
    from harness.seaweed import SeaweedS3

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
NOTES_HEADING = "### Notes"
# The sidecar's start-up write probe (modeltap/core/store/s3.py PROBE_KEY) is not a capture object.
PROBE_PREFIX = ".modeltap"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK_MARK = "BENCH_RESULT "

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


def run_child_output(
    cmd: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, str]:
    """Run a command (``env``: its whole environment); return (wall s, peak RSS MiB, stdout).

    ``os.wait4`` gives the peak RSS of that child alone, which ``subprocess`` does not.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024, stdout


def run_child(
    cmd: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, dict[str, Any]]:
    """:func:`run_child_output`, with the child's last stdout line read as JSON."""
    wall, rss, stdout = run_child_output(cmd, env, cwd)
    info: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return wall, rss, info


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
# CPU accounting (/proc) and machine facts


def stat_cpu_seconds(stat_path: Path) -> float:
    """utime + stime from a /proc stat file (fields 14 and 15; fields[0] below is field 3)."""
    stat = stat_path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid: int | None, *, descendants: bool = False) -> float:
    """utime + stime of a process (all its threads), in clock ticks' precision.

    With ``descendants``, its live descendants' too, and a process gone meanwhile counts 0 (the
    tree changes while it is read). ``None`` (a process not started) counts 0.
    """
    if pid is None:
        return 0.0
    if not descendants:
        return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    total = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        total += stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    for child in children(pid):
        total += cpu_seconds(child, descendants=True)
    return total


def main_thread_cpu_seconds(pid: int) -> float:
    """utime + stime of a process's main thread (the sidecar's event loop), from its task stat."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def precise_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` in nanoseconds' precision (schedstat), not the 10 ms
    ticks of /proc/<pid>/stat: for costs of milliseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from each of its threads' ``children`` file)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(v) for v in parts[:8]]
    idle = vals[3] + vals[4]
    return float(sum(vals) - idle), float(sum(vals))


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of every child it has reaped (all the bench's processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def cpu_model() -> str:
    """The CPU's model name as lscpu reports it (/proc/cpuinfo where lscpu is missing)."""
    with contextlib.suppress(OSError):
        done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10)
        for line in done.stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def git(*args: str) -> str:
    """``git`` run in the repository: its stdout, stripped ("" where git fails)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip()
    return ""


def usable_cores() -> int:
    """CPUs this process may run on (its affinity), which may be fewer than the machine's."""
    return len(os.sched_getaffinity(0))


def load_text(load: Sequence[float] | None = None) -> str:
    """The 1/5/15-minute load average (now, or ``load``) as ``0.52 0.61 0.70``."""
    return " ".join(f"{v:.2f}" for v in (load if load is not None else os.getloadavg()))


# -------------------------------------------------------------------------------------------------
# wrk

# The Lua ``done`` every wrk script of the benchmarks ends with: one marked JSON line of results.
WRK_DONE = (
    """\
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '"""
    + WRK_MARK
    + """{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, '
    .. '"non_2xx": %d, "p50_us": %.1f, "p99_us": %.1f, "mean_us": %.1f, "max_us": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
"""
)


@dataclass(frozen=True)
class WrkResult:
    """What :data:`WRK_DONE` prints: counts, and latencies in microseconds."""

    requests: int
    duration_us: int
    bytes: int
    errors: int
    non_2xx: int
    p50_us: float
    p99_us: float
    mean_us: float
    max_us: float

    @property
    def seconds(self) -> float:
        return self.duration_us / 1e6

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.duration_us else 0.0


def wrk_argv(
    url: str, script: Path, connections: int, seconds: int, script_args: Sequence[str] = ()
) -> list[str]:
    """One wrk thread (wrk gets one core) with ``connections`` connections for ``seconds``."""
    argv = [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    return [*argv, url, *(["--", *script_args] if script_args else [])]


def parse_wrk(output: str) -> WrkResult:
    """The result line :data:`WRK_DONE` printed in ``output``; RuntimeError if there is none."""
    for line in output.splitlines():
        if line.startswith(WRK_MARK):
            data = json.loads(line[len(WRK_MARK) :])
            return WrkResult(
                requests=int(data["requests"]),
                duration_us=int(data["duration_us"]),
                bytes=int(data["bytes"]),
                errors=int(data["errors"]),
                non_2xx=int(data["non_2xx"]),
                p50_us=float(data["p50_us"]),
                p99_us=float(data["p99_us"]),
                mean_us=float(data["mean_us"]),
                max_us=float(data["max_us"]),
            )
    raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


# -------------------------------------------------------------------------------------------------
# nginx


def nginx_user_line() -> str:
    """As root, nginx would switch its workers to ``nobody``; keep the current user instead."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


def nginx_main(prefix: Path, name: str) -> str:
    """The top of an nginx config: one worker in the foreground, files under ``prefix``."""
    return f"""
worker_processes 1;
daemon off;
{nginx_user_line()}
pid {prefix}/{name}.pid;
error_log {prefix}/{name}-error.log warn;
events {{ worker_connections 4096; }}
"""


def nginx_http_common(prefix: Path, name: str) -> str:
    """The ``http`` settings every benchmark nginx shares: no access log, long keep-alive."""
    temp = prefix / f"{name}-temp"
    return f"""
    access_log off;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
"""


def origin_conf(prefix: Path, port: int, www: Path) -> str:
    """nginx answering ``POST /<label>.csv`` with that file (the body is read and discarded).

    nginx's static module answers POST with 405; ``error_page 405 =200 $uri`` turns that into an
    internal GET of the same file, keeping the connection alive.
    """
    return f"""{nginx_main(prefix, "origin")}
http {{
{nginx_http_common(prefix, "origin")}
    types {{ text/csv csv; }}
    default_type text/csv;
    sendfile on;
    open_file_cache max=64;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        error_page 405 =200 $uri;
        location / {{ }}
    }}
}}
"""


def start_nginx(
    name: str,
    conf: str,
    prefix: Path,
    ready_path: str,
    port: int,
    *,
    log_dir: Path | None = None,
    argv_prefix: Sequence[str] = (),
) -> Proc:
    """nginx with ``conf`` (its files under ``prefix``), ready when ``ready_path`` answers on
    ``port``; stopped by pid if it never does."""
    (prefix / f"{name}-temp").mkdir(parents=True, exist_ok=True)
    conf_path = prefix / f"{name}.conf"
    conf_path.write_text(conf)
    argv = [*argv_prefix, NGINX, "-e", "stderr", "-p", str(prefix), "-c", str(conf_path)]
    url = f"http://127.0.0.1:{port}{ready_path}"
    return start_ready(name, argv, log_dir or prefix, url, cwd=prefix)


def start_origin(
    prefix: Path,
    www: Path,
    probe: str,
    *,
    log_dir: Path | None = None,
    argv_prefix: Sequence[str] = (),
) -> tuple[Proc, str]:
    """The origin nginx (:func:`origin_conf`) on a free port, ready once it serves ``probe``
    (a file of ``www``); returns it and its base URL."""
    port = free_port()
    conf = origin_conf(prefix, port, www)
    proc = start_nginx(
        "origin", conf, prefix, f"/{probe}", port, log_dir=log_dir, argv_prefix=argv_prefix
    )
    return proc, f"http://127.0.0.1:{port}"


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
