"""Capture benchmark: capture throughput into SeaweedFS, and proxy latency while a backlog drains.

Part 1 (throughput): wrk POSTs 1 KB and 100 KB bodies through the sidecar for a fixed time at
0 % and 100 % capture (plus one gzip row per size); the run waits until every spooled record is
stored, then counts the records in the bucket (listing it and counting lines) and reports records/s
and MB/s over the time from the first request to the last object stored, next to wrk's req/s and
latency.

Part 2 (latency while a backlog drains): a fixed-rate client measures per-request latency with
capture off, with capture on and no backlog, and right after SeaweedFS comes back from an outage
during which a backlog of sealed segments piled up in the spool.

Results go to bench/RESULTS.md (section ``## bench/capture``). See bench/capture/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gzip
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    CLK_TCK,
    NGINX,
    WRK,
    WRK_DONE,
    WrkResult,
    add_record_flags,
    capture_objects,
    cpu_model,
    cpu_seconds,
    csv_body,
    load_text,
    machine_busy,
    own_cpu_seconds,
    parse_wrk,
    sidecar_args,
    sidecar_env,
    start_origin,
    stop_proc,
    write_section,
    wrk_argv,
)
from harness.metrics import scrape  # noqa: E402
from harness.procs import Proc, free_port, start_ready  # noqa: E402
from harness.seaweed import SeaweedS3  # noqa: E402

SECTION = "## bench/capture"
SIZES = {"1KB": 1024, "100KB": 100 * 1024}
MB = 1_000_000
PREFIX = "captures"

# -------------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    connections: int
    sizes: list[str]
    gzip_row: bool
    probe_rate: float
    probe_seconds: float
    probe_size: str
    backlog_mb: float
    backlog_size: str
    segment_age: float
    retry_max: float
    py_spy: bool
    pin: bool
    record: bool
    results: Path
    wait_quiet: float
    max_load: float
    keep: bool
    parts: list[str]


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds of wrk per cell (10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of wrk before each cell (2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"payload sizes among {list(SIZES)}")
    p.add_argument("--no-gzip-row", action="store_true", help="skip the store.gzip=true rows")
    p.add_argument("--probe-rate", type=float, default=500.0, help="latency probe req/s (500)")
    p.add_argument("--probe-seconds", type=float, default=15.0, help="latency probe length (15)")
    p.add_argument("--probe-size", default="1KB", choices=list(SIZES), help="probe body (1KB)")
    p.add_argument("--backlog-mb", type=float, default=50.0, help="backlog to build, MB (50)")
    p.add_argument(
        "--backlog-size", default="100KB", choices=list(SIZES), help="bodies that build it"
    )
    p.add_argument("--segment-age", type=float, default=1.0, help="spool.max-segment-age (1 s)")
    p.add_argument(
        "--retry-max",
        type=float,
        default=1.0,
        help="store.retry-max-seconds of the sidecar (1; the sidecar's default is 30)",
    )
    p.add_argument(
        "--py-spy", action="store_true", help="py-spy the sidecar while the backlog drains"
    )
    p.add_argument("--pin", action="store_true", help="sidecar on CPU 0, everything else on 1")
    add_record_flags(p)
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="wait up to this long (polling every 60 s) for the 1-min load to drop (900; 0: no)",
    )
    p.add_argument("--max-load", type=float, default=1.0, help="load counted as quiet (1.0)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, raw JSON)")
    p.add_argument("--parts", default="throughput,latency", help="which parts: throughput,latency")
    a = p.parse_args(argv)
    sizes = [s for s in a.sizes.split(",") if s]
    for s in sizes:
        if s not in SIZES:
            p.error(f"unknown size {s!r}")
    parts = [s for s in a.parts.split(",") if s]
    for s in parts:
        if s not in ("throughput", "latency"):
            p.error(f"unknown part {s!r}")
    return Options(
        duration=a.duration,
        warmup=a.warmup,
        connections=a.connections,
        sizes=sizes,
        gzip_row=not a.no_gzip_row,
        probe_rate=a.probe_rate,
        probe_seconds=a.probe_seconds,
        probe_size=a.probe_size,
        backlog_mb=a.backlog_mb,
        backlog_size=a.backlog_size,
        segment_age=a.segment_age,
        retry_max=a.retry_max,
        py_spy=a.py_spy,
        pin=a.pin,
        record=not a.no_record,
        results=a.results,
        wait_quiet=a.wait_quiet,
        max_load=a.max_load,
        keep=a.keep,
        parts=parts,
    )


# -------------------------------------------------------------------------------------------------
# processes


def pin_threads(pid: int, cpu: int) -> None:
    """Put every thread of ``pid`` on ``cpu`` (for processes we cannot start under taskset)."""
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task.name), {cpu})


# Distinct request bodies per size, cycled by wrk: consecutive records differ, as in real traffic.
VARIANTS = {"1KB": 256, "100KB": 16}


_WRK_SCRIPT = """\
-- {count} distinct bodies, formatted into requests once; request() cycles through them.
local reqs = {{}}
local n = 0
local i = 0

function init(args)
  for k = 0, {count} - 1 do
    local f = assert(io.open(string.format({pattern}, k), "rb"))
    local body = f:read("*a")
    f:close()
    n = n + 1
    reqs[n] = wrk.format("POST", {path}, {{["Content-Type"] = "text/csv"}}, body)
  end
  -- Optional limit (first script argument): stop after that many responses. Defined only
  -- then, since wrk parses every response when a response() function exists.
  local limit = tonumber(args[1] or "")
  if limit and limit > 0 then
    local seen = 0
    response = function(status, headers, body)
      seen = seen + 1
      if seen >= limit then
        wrk.thread:stop()
      end
    end
  end
end

function request()
  i = i % n + 1
  return reqs[i]
end

{done}"""


@dataclass
class Sidecar:
    proc: Proc
    proxy_url: str
    admin_url: str
    spool: Path
    bucket: str
    percent: float
    gzip: bool


class Bench:
    """The shared processes (SeaweedFS, origin nginx) and the helpers that start the others."""

    def __init__(self, opts: Options, work: Path) -> None:
        self.opts = opts
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.www = work / "www"
        self.s3 = SeaweedS3(work / "seaweed")
        self.origin: Proc | None = None
        self.origin_url = ""
        self.scripts: dict[str, Path] = {}
        self.bodies: dict[str, Path] = {}
        cpus = sorted(os.sched_getaffinity(0))
        self.pin = opts.pin and len(cpus) >= 2 and shutil.which("taskset") is not None
        self.sidecar_cpu, self.load_cpu = (cpus[0], cpus[1]) if self.pin else (None, None)
        self._seq = 0

    def taskset(self, cpu: int | None) -> list[str]:
        return ["taskset", "-c", str(cpu)] if cpu is not None else []

    # -- shared processes --------------------------------------------------------------------
    def start(self) -> None:
        self.www.mkdir(parents=True, exist_ok=True)
        for label, size in SIZES.items():
            # The origin answers POST /<label>.csv with this file: a response of the same size.
            body = self.www / f"{label}.csv"
            body.write_bytes(csv_body(size))
            self.bodies[label] = body
            bodies = self.work / "bodies"
            bodies.mkdir(exist_ok=True)
            for k in range(VARIANTS[label]):
                (bodies / f"{label}-{k}.csv").write_bytes(csv_body(size, seed=k + 1))
            script = self.work / f"post-{label}.lua"
            script.write_text(
                _WRK_SCRIPT.format(
                    count=VARIANTS[label],
                    pattern=json.dumps(str(bodies / f"{label}-%d.csv")),
                    path=json.dumps(f"/{label}.csv"),
                    done=WRK_DONE,
                )
            )
            self.scripts[label] = script
        self.origin, self.origin_url = start_origin(
            self.work,
            self.www,
            "1KB.csv",
            log_dir=self.logs,
            argv_prefix=self.taskset(self.load_cpu),
        )
        self.start_seaweed()

    def start_seaweed(self) -> None:
        self.s3.start()
        if self.load_cpu is not None and self.s3.pid is not None:
            pin_threads(self.s3.pid, self.load_cpu)

    def stop(self) -> None:
        stop_proc(self.origin)
        self.s3.cleanup()

    # -- sidecar -------------------------------------------------------------------------------
    def start_sidecar(self, percent: float, bucket: str, gzip_on: bool) -> Sidecar:
        self._seq += 1
        name = f"sidecar-{self._seq}-{percent:g}{'-gz' if gzip_on else ''}"
        port, admin = free_port(), free_port()
        spool = self.work / f"{name}-spool"
        args = sidecar_args(
            upstream=self.origin_url,
            port=port,
            admin_port=admin,
            spool=spool,
            destination=f"s3://{bucket}/{PREFIX}",
            endpoint_url=self.s3.endpoint_url,
            region=self.s3.region,
            percent=percent,
            segment_age=self.opts.segment_age,
            retry_max=self.opts.retry_max,
        )
        argv = [
            *self.taskset(self.sidecar_cpu),
            sys.executable, "-m", "sidecar", *args,
            "--store.gzip", "true" if gzip_on else "false",
            "--store.shutdown-grace-seconds", "5",
        ]  # fmt: skip
        ready = f"http://127.0.0.1:{admin}/readyz"
        proc = start_ready(name, argv, self.logs, ready, env=sidecar_env(self.s3, self.work))
        return Sidecar(
            proc,
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{admin}",
            spool,
            bucket,
            percent,
            gzip_on,
        )

    @contextlib.contextmanager
    def sidecar(self, percent: float, gzip_on: bool = False) -> Iterator[Sidecar]:
        """A sidecar writing to a fresh bucket; stopped by pid and the bucket removed after."""
        bucket = self.s3.create_bucket()
        sc: Sidecar | None = None
        try:
            sc = self.start_sidecar(percent, bucket, gzip_on)
            yield sc
        finally:
            if sc is not None:
                stop_proc(sc.proc, timeout=20.0)
            if self.s3.running:
                with contextlib.suppress(Exception):
                    self.s3.delete_bucket(bucket)

    # -- wrk -----------------------------------------------------------------------------------
    def start_wrk(
        self, url: str, label: str, seconds: int, connections: int, limit: int = 0
    ) -> Proc:
        """wrk for ``seconds``; with ``limit``, it stops after that many responses."""
        self._seq += 1
        script_args = [str(limit)] if limit else []
        argv = [
            *self.taskset(self.load_cpu),
            *wrk_argv(f"{url}/{label}.csv", self.scripts[label], connections, seconds, script_args),
        ]
        return Proc(f"wrk-{self._seq}", argv, self.logs)

    def run_wrk(self, url: str, label: str, seconds: int, connections: int) -> WrkResult:
        proc = self.start_wrk(url, label, seconds, connections)
        try:
            proc.wait(seconds + 30)
        finally:
            stop_proc(proc)
        return wrk_result(proc)


def log_errors(proc: Proc) -> dict[str, int]:
    """ERROR lines and tracebacks in a process's log so far (warm-up included)."""
    text = proc.log()
    return {"error_lines": text.count(" ERROR "), "tracebacks": text.count("Traceback")}


def wrk_result(proc: Proc) -> WrkResult:
    return parse_wrk(proc.log())


# -------------------------------------------------------------------------------------------------
# the sidecar's metrics


def snapshot(admin_url: str) -> dict[str, float]:
    samples = scrape(admin_url)

    def get(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    def total(name: str) -> float:
        return sum(v for (n, _), v in samples.items() if n == name)

    out = {
        "ok": get("modeltap_sidecar_requests_total", status_class="2xx"),
        "requests": total("modeltap_sidecar_requests_total"),
        "queue": get("modeltap_sidecar_capture_queue_records"),
        "uploaded_records": get("modeltap_sidecar_upload_records_total"),
        "uploaded_bytes": get("modeltap_sidecar_upload_bytes_total"),
        "uploaded_objects": get("modeltap_sidecar_upload_objects_total"),
        "pending": get("modeltap_sidecar_upload_pending_segments"),
        "pending_bytes": get("modeltap_sidecar_upload_pending_bytes"),
        "sealed": get("modeltap_sidecar_spool_segments_sealed_total"),
        "upload_failures": total("modeltap_sidecar_upload_failures_total"),
        "upload_retries": get("modeltap_sidecar_upload_retries_total"),
        "upstream_errors": total("modeltap_sidecar_upstream_errors_total"),
    }
    for outcome in ("spooled", "dropped_queue_full", "skipped_disk", "write_error", "too_large"):
        out[outcome] = get("modeltap_sidecar_capture_records_total", outcome=outcome)
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def wait_stored(admin_url: str, timeout: float = 180.0) -> tuple[float, dict[str, float]]:
    """Poll every 0.1 s until every spooled record is stored and the counters stopped changing.

    Returns the monotonic time of the first poll that saw the final state (the last object was
    stored at most one poll interval earlier) and that state.
    """
    deadline = time.monotonic() + timeout
    first: tuple[float, dict[str, float]] | None = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        m = snapshot(admin_url)
        done = m["queue"] == 0 and m["pending"] == 0 and m["uploaded_records"] == m["spooled"]
        if done:
            if first is not None and first[1] == m:
                return first
            if first is None or first[1] != m:
                first = (now, m)
        else:
            first = None
        time.sleep(0.1)
    raise TimeoutError(f"uploads did not settle within {timeout}s: {snapshot(admin_url)}")


class PeakSampler:
    """Scrapes the sidecar once a second on a thread, keeping the peaks of the backlog gauges."""

    def __init__(self, admin_url: str, interval: float = 1.0) -> None:
        self.admin_url = admin_url
        self.interval = interval
        self.peaks = {"pending": 0.0, "pending_bytes": 0.0, "queue": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(100_000):  # bounded; stopped long before
            if self._stop.wait(self.interval):
                return
            with contextlib.suppress(Exception):
                m = snapshot(self.admin_url)
                for k in self.peaks:
                    self.peaks[k] = max(self.peaks[k], m[k])

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


# -------------------------------------------------------------------------------------------------
# the bucket


@dataclass
class BucketCount:
    objects: int = 0
    records: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    first_modified: float | None = None
    last_modified: float | None = None


def list_keys(s3: SeaweedS3, bucket: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with contextlib.closing(s3.client()) as client:
        for obj in capture_objects(client, bucket, PREFIX):
            out[obj["Key"]] = obj
    return out


def count_bucket(s3: SeaweedS3, bucket: str, exclude: set[str] | None = None) -> BucketCount:
    """Download every object (but ``exclude``) and count its lines."""
    exclude = exclude or set()
    count = BucketCount()
    keys = list_keys(s3, bucket)
    with contextlib.closing(s3.client()) as client:
        for key, obj in sorted(keys.items()):
            if key in exclude:
                continue
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            count.objects += 1
            count.stored_bytes += len(data)
            if key.endswith(".gz"):
                data = gzip.decompress(data)
            count.raw_bytes += len(data)
            count.records += data.count(b"\n")
            modified = obj["LastModified"].timestamp()
            count.first_modified = min(count.first_modified or modified, modified)
            count.last_modified = max(count.last_modified or modified, modified)
    return count


# -------------------------------------------------------------------------------------------------
# part 1: throughput


def throughput_cell(bench: Bench, label: str, percent: float, gzip_on: bool) -> dict[str, Any]:
    opts = bench.opts
    name = f"{label} capture {percent:g}%{' gzip' if gzip_on else ''}"
    print(f"[throughput] {name}", file=sys.stderr, flush=True)
    with bench.sidecar(percent, gzip_on) as sc:
        if opts.warmup:
            bench.run_wrk(sc.proxy_url, label, opts.warmup, opts.connections)
            wait_stored(sc.admin_url)
        before = snapshot(sc.admin_url)
        keys_before = set(list_keys(bench.s3, sc.bucket))
        cpu0 = {
            "sidecar": cpu_seconds(sc.proc.pid, descendants=True),
            "weed": cpu_seconds(bench.s3.pid, descendants=True),
            "origin": cpu_seconds(bench.origin.pid if bench.origin else None, descendants=True),
        }
        busy0 = machine_busy()
        t0 = time.monotonic()
        wall0 = time.time()
        with PeakSampler(sc.admin_url) as peaks:
            wrk = bench.run_wrk(sc.proxy_url, label, opts.duration, opts.connections)
        t_wrk = time.monotonic()
        t_done, after = wait_stored(sc.admin_url)
        cpu1 = {
            "sidecar": cpu_seconds(sc.proc.pid, descendants=True),
            "weed": cpu_seconds(bench.s3.pid, descendants=True),
            "origin": cpu_seconds(bench.origin.pid if bench.origin else None, descendants=True),
        }
        busy1 = machine_busy()
        d = delta(after, before)
        count = count_bucket(bench.s3, sc.bucket, keys_before)
        errors = log_errors(sc.proc)
    window = max(t_done - t0, 1e-9) if percent > 0 else wrk.seconds
    cores = os.cpu_count() or 1
    jiffies = busy1[1] - busy0[1]
    return {
        "name": name,
        "size": label,
        "percent": percent,
        "gzip": gzip_on,
        "wrk": wrk.__dict__,
        "rps": wrk.rps,
        "window_s": window,
        "tail_s": t_done - t_wrk if percent > 0 else 0.0,
        "records": count.records,
        "objects": count.objects,
        "stored_bytes": count.stored_bytes,
        "raw_bytes": count.raw_bytes,
        "records_per_s": count.records / window,
        "stored_mb_per_s": count.stored_bytes / window / MB,
        "raw_mb_per_s": count.raw_bytes / window / MB,
        "s3_first_modified_after_start_s": (count.first_modified - wall0)
        if count.first_modified
        else None,
        "metrics": d,
        "log_errors": errors,
        "peaks": peaks.peaks,
        "cpu_s": {k: cpu1[k] - cpu0[k] for k in cpu0},
        "cpu_window_s": t_done - t0,
        "machine_busy_cores": (busy1[0] - busy0[0]) / jiffies * cores if jiffies else 0.0,
    }


def run_throughput(bench: Bench) -> list[dict[str, Any]]:
    rows = []
    for label in bench.opts.sizes:
        configs = [(0.0, False), (100.0, False)]
        if bench.opts.gzip_row:
            configs.append((100.0, True))
        for percent, gzip_on in configs:
            rows.append(throughput_cell(bench, label, percent, gzip_on))
    return rows


# -------------------------------------------------------------------------------------------------
# part 2: latency while a backlog drains


async def _probe(
    url: str, rate: float, seconds: float, body: bytes, start_at: float
) -> list[list[float]]:
    """Open-loop client: request i is due at t0 + i/rate; latency counts from when it was due."""
    import aiohttp

    n = max(1, int(rate * seconds))
    results: list[list[float]] = []
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(due: float) -> None:
            status = 0.0
            try:
                async with session.post(
                    url, data=body, headers={"Content-Type": "text/csv"}
                ) as resp:
                    await resp.read()
                    status = float(resp.status)
            except (aiohttp.ClientError, TimeoutError):
                status = 0.0
            results.append([due, time.monotonic() - due, status])

        tasks = []
        t0 = max(start_at, time.monotonic())
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    results.sort()
    return results


def probe_main(argv: Sequence[str]) -> int:
    """``run.py --probe URL RATE SECONDS BODY_FILE OUT_JSON START_AT``: the latency client.

    START_AT is a CLOCK_MONOTONIC time (shared by every process on the machine).
    """
    url, rate, seconds, body_file, out, start_at = argv
    body = Path(body_file).read_bytes()
    results = asyncio.run(_probe(url, float(rate), float(seconds), body, float(start_at)))
    Path(out).write_text(json.dumps(results))
    return 0


def start_probe(bench: Bench, url: str, out: Path, start_at: float | None = None) -> Proc:
    """The probe process; ``start_at`` is the CLOCK_MONOTONIC time of its first request."""
    opts = bench.opts
    argv = [
        *bench.taskset(bench.load_cpu),
        sys.executable, str(Path(__file__).resolve()), "--probe",
        f"{url}/{opts.probe_size}.csv", f"{opts.probe_rate:g}", f"{opts.probe_seconds:g}",
        str(bench.bodies[opts.probe_size]), str(out),
        repr(start_at if start_at is not None else time.monotonic() + 1.0),
    ]  # fmt: skip
    return Proc(out.stem, argv, bench.logs)


def wait_probe(bench: Bench, proc: Proc, out: Path) -> list[list[float]]:
    try:
        rc = proc.wait(bench.opts.probe_seconds + 60)
    finally:
        stop_proc(proc)
    if rc != 0:
        raise RuntimeError(f"latency probe exited with {rc}:\n{proc.log()[-3000:]}")
    data: list[list[float]] = json.loads(out.read_text())
    return data


def start_py_spy(bench: Bench, sc: Sidecar, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy the sidecar (all threads, 250 Hz) into py-spy-drain.txt (raw collapsed stacks)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    log = open(bench.logs / "py-spy.log", "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(
        [str(py_spy), "record", "-p", str(sc.proc.pid), "-d", f"{seconds:.0f}", "-r", "250",
         "--threads", "--nonblocking", "-f", "raw", "-o", str(bench.work / "py-spy-drain.txt")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def summarize_py_spy(path: Path, top: int = 10) -> dict[str, Any]:
    """Samples per thread and the event loop thread's hottest leaf frames (self time).

    Samples whose leaf is ``Runner.run`` are inside uvloop's C code (waiting, or socket I/O that
    py-spy cannot see into); they are counted but not ranked.
    """
    threads: dict[str, int] = {}
    leaves: dict[str, int] = {}
    main_samples = in_uvloop = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        parts = stack.split(";")
        threads[parts[0]] = threads.get(parts[0], 0) + count
        if "MainThread" not in parts[0]:
            continue
        main_samples += count
        if parts[-1].startswith("Runner.run "):
            in_uvloop += count
            continue
        leaves[parts[-1]] = leaves.get(parts[-1], 0) + count
    return {
        "threads": threads,
        "main_samples": main_samples,
        "main_in_uvloop": in_uvloop,
        "main_leaves": sorted(leaves.items(), key=lambda kv: -kv[1])[:top],
    }


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[idx]


def latency_stats(samples: Sequence[Sequence[float]]) -> dict[str, float]:
    lat = [s[1] * 1000 for s in samples if s[2] == 200]
    return {
        "requests": len(samples),
        "errors": sum(1 for s in samples if s[2] != 200),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "mean_ms": statistics.fmean(lat) if lat else float("nan"),
    }


def spool_segments(spool: Path) -> dict[Path, int]:
    out = {}
    for p in spool.rglob("*.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            out[p] = p.stat().st_size
    return out


def latency_cell(bench: Bench, kind: str) -> dict[str, Any]:
    """kind: 'off' (0 %), 'on' (100 %, no backlog) or 'backlog' (100 %, draining a backlog)."""
    opts = bench.opts
    print(f"[latency] {kind}", file=sys.stderr, flush=True)
    percent = 0.0 if kind == "off" else 100.0
    out = bench.work / f"probe-{kind}.json"
    row: dict[str, Any] = {"kind": kind, "percent": percent}
    with bench.sidecar(percent) as sc:
        # A short warm-up at the probe's size, then settle.
        bench.run_wrk(sc.proxy_url, opts.probe_size, 1, 4)
        wait_stored(sc.admin_url)
        before = snapshot(sc.admin_url)
        wrk_ok = 0
        if kind == "backlog":
            restart = threading.Thread(target=bench.start_seaweed, daemon=True)
            spy: subprocess.Popen[bytes] | None = None
            try:
                wrk_ok = build_backlog(bench, sc, row)
                # The probe's first request and SeaweedFS's restart start at the same moment.
                t_start = time.monotonic() + 1.0
                probe = start_probe(bench, sc.proxy_url, out, t_start)
                if opts.py_spy:
                    spy = start_py_spy(bench, sc, opts.probe_seconds)
                time.sleep(max(0.0, t_start - time.monotonic()))
                restart.start()
                watch_drain(sc, row, t_start, restart)
                samples = wait_probe(bench, probe, out)
                if spy is not None:
                    spy.wait(opts.probe_seconds + 30)
                    row["py_spy"] = summarize_py_spy(bench.work / "py-spy-drain.txt")
            finally:
                if spy is not None and spy.poll() is None:
                    spy.kill()  # by its Popen, i.e. its pid
                    spy.wait(10)
                if restart.is_alive():
                    restart.join(90)
                if not bench.s3.running:  # leave SeaweedFS up whatever happened
                    bench.start_seaweed()
            drained_at = row["t_drained"]
            during = [s for s in samples if t_start <= s[0] <= drained_at]
            after_drain = [s for s in samples if s[0] > drained_at]
            row["during"] = latency_stats(during)
            row["after"] = latency_stats(after_drain)
        else:
            cpu0 = cpu_seconds(sc.proc.pid, descendants=True)
            probe = start_probe(bench, sc.proxy_url, out)
            samples = wait_probe(bench, probe, out)
            row["sidecar_cpu_s"] = cpu_seconds(sc.proc.pid, descendants=True) - cpu0
        row["whole"] = latency_stats(samples)
        row["timeline"] = timeline(samples)
        _, after = wait_stored(sc.admin_url)
        d = delta(after, before)
        count = count_bucket(bench.s3, sc.bucket)
        errors = log_errors(sc.proc)
    probe_ok = sum(1 for s in samples if s[2] == 200)
    row["metrics"] = d
    # The bucket holds the warm-up's records too: compare it with the sidecar's totals.
    row["records_stored"] = count.records
    row["spooled_total"] = after["spooled"]
    row["ok_total"] = after["ok"]
    row["ok_requests_clients"] = probe_ok + wrk_ok
    row["lost"] = int(after["spooled"] - count.records) if percent else 0
    row["log_errors"] = errors
    return row


def build_backlog(bench: Bench, sc: Sidecar, row: dict[str, Any]) -> int:
    """Stop SeaweedFS and send about ``--backlog-mb`` of records; returns wrk's 2xx count."""
    opts = bench.opts
    # Records are about request + response + 500 bytes of JSON; wrk stops after enough of them.
    per_record = 2 * SIZES[opts.backlog_size] + 500
    limit = max(1, round(opts.backlog_mb * MB / per_record))
    bench.s3.stop()
    t0 = time.monotonic()
    ok0 = snapshot(sc.admin_url)["ok"]
    wrk = bench.start_wrk(sc.proxy_url, opts.backlog_size, 120, 4, limit=limit)
    try:
        # wrk's thread:stop() ends the requests but not the process (it sleeps out -d): once
        # the sidecar has answered them all, SIGINT makes wrk print its summary and exit.
        deadline = time.monotonic() + 130
        while time.monotonic() < deadline and wrk.alive():
            if snapshot(sc.admin_url)["ok"] - ok0 >= limit:
                break
            time.sleep(0.05)
        wrk.signal(signal.SIGINT)
        wrk.wait(15)
    finally:
        stop_proc(wrk)
    result = wrk_result(wrk)
    row["build_s"] = time.monotonic() - t0
    row["build_wrk"] = result.__dict__
    # Let the writer empty its queue and seal the last open segment (age limit plus its tick),
    # so every record sent is in a sealed segment: the whole of it is backlog.
    deadline = time.monotonic() + opts.segment_age + 30
    while time.monotonic() < deadline:
        if snapshot(sc.admin_url)["queue"] == 0 and not any(sc.spool.rglob("*.jsonl.part")):
            break
        time.sleep(0.1)
    backlog = spool_segments(sc.spool)
    row["backlog_segments"] = len(backlog)
    row["backlog_bytes"] = sum(backlog.values())
    row["backlog_segment_sizes"] = sorted(backlog.values())
    row["_backlog"] = sorted(backlog)
    m = snapshot(sc.admin_url)
    row["failures_during_outage"] = m["upload_failures"]
    return result.requests - result.non_2xx


def watch_drain(
    sc: Sidecar, row: dict[str, Any], t_start: float, restart: threading.Thread
) -> None:
    """Poll the spool every 50 ms until every backlog segment has been stored (and deleted)."""
    backlog: list[Path] = row.pop("_backlog")
    total = len(backlog)
    deadline = t_start + 180
    t_first = t_ready = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if t_ready is None and not restart.is_alive():
            t_ready = now
        left = [p for p in backlog if p.exists()]
        if t_first is None and len(left) < total:
            t_first = now
        backlog = left
        if not left:
            break
        time.sleep(0.05)
    else:
        raise TimeoutError(f"backlog not drained within 180 s: {len(backlog)} segments left")
    restart.join(60)
    t_drained = time.monotonic()
    row["t_drained"] = t_drained
    row["store_ready_s"] = (t_ready or t_drained) - t_start
    row["first_stored_s"] = (t_first or t_drained) - t_start
    row["drain_s"] = t_drained - t_start
    row["drain_after_first_s"] = t_drained - (t_first or t_drained)


def timeline(samples: Sequence[Sequence[float]]) -> list[dict[str, float]]:
    """Per-second p50/p99 of the probe (by the second a request was due)."""
    if not samples:
        return []
    t0 = samples[0][0]
    buckets: dict[int, list[float]] = {}
    for due, lat, status in samples:
        if status == 200:
            buckets.setdefault(int(due - t0), []).append(lat * 1000)
    return [
        {"second": s, "n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
        for s, v in sorted(buckets.items())
    ]


def run_latency(bench: Bench) -> list[dict[str, Any]]:
    return [latency_cell(bench, kind) for kind in ("off", "on", "backlog")]


# -------------------------------------------------------------------------------------------------
# report


def _f(v: float | None, digits: int = 1) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:,.{digits}f}"


def throughput_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| payload | capture | store | wrk req/s | p50 ms | p99 ms | records stored | "
        "window s (tail) | records/s | MB/s stored | MB/s raw | metrics check | "
        "peak pending segs (MB) | CPU s: sidecar / weed / origin | machine busy cores |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"
    )
    lines = [head]
    for r in rows:
        m, w = r["metrics"], r["wrk"]
        on = r["percent"] > 0
        if on:
            check = (
                "ok"
                if r["records"] == m["uploaded_records"] == m["spooled"] == m["ok"]
                else f"bucket {r['records']} / uploaded {m['uploaded_records']:.0f} / "
                f"spooled {m['spooled']:.0f} / 2xx {m['ok']:.0f}"
            )
            drops = m["dropped_queue_full"] + m["skipped_disk"] + m["write_error"]
            if drops:
                check += f"; dropped {drops:.0f}"
        else:
            check = "-"
        if w["errors"] or w["non_2xx"]:
            check += f"; wrk errors {w['errors']}, non-2xx {w['non_2xx']}"
        if r["log_errors"]["error_lines"]:
            check += f"; {r['log_errors']['error_lines']} ERROR lines in the sidecar log"
        cpu = r["cpu_s"]
        lines.append(
            "| "
            + " | ".join(
                [
                    r["size"],
                    f"{r['percent']:g}%",
                    ("gzip" if r["gzip"] else "plain") if on else "-",
                    _f(r["rps"], 0),
                    _f(w["p50_us"] / 1000, 2),
                    _f(w["p99_us"] / 1000, 2),
                    f"{r['records']:,}" if on else "-",
                    f"{r['window_s']:.2f} ({r['tail_s']:.2f})" if on else f"{r['window_s']:.2f}",
                    _f(r["records_per_s"], 0) if on else "-",
                    _f(r["stored_mb_per_s"], 1) if on else "-",
                    _f(r["raw_mb_per_s"], 1) if on else "-",
                    check,
                    f"{r['peaks']['pending']:.0f} ({r['peaks']['pending_bytes'] / MB:.0f})"
                    if on
                    else "-",
                    f"{cpu['sidecar']:.1f} / {cpu['weed']:.1f} / {cpu['origin']:.1f} "
                    f"(of {r['cpu_window_s']:.1f} s)",
                    _f(r["machine_busy_cores"], 2),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def latency_table(rows: list[dict[str, Any]], opts: Options) -> str:
    head = (
        "| condition | backlog | requests (errors) | p50 ms | p99 ms | max ms | "
        "store ready s | first backlog object s | drain s | p50 / p99 ms while draining "
        "(requests) | p50 / p99 ms after | records stored = spooled |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
    )
    lines = [head]
    names = {
        "off": "capture disabled (0%)",
        "on": "capture 100%, no backlog",
        "backlog": "capture 100%, backlog draining",
    }
    for r in rows:
        w = r["whole"]
        bl = r.get("backlog_bytes")
        dur, aft = r.get("during"), r.get("after")
        if r["percent"]:
            stored = "yes" if r["lost"] == 0 else f"NO: {r['lost']} missing"
            if r["log_errors"]["error_lines"]:
                stored += f"; {r['log_errors']['error_lines']} ERROR lines in the sidecar log"
            if r["records_stored"] != r["ok_total"]:
                stored += f" (stored {r['records_stored']}, 2xx {r['ok_total']:.0f})"
        else:
            stored = "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    names[r["kind"]],
                    f"{bl / MB:.0f} MB in {r['backlog_segments']} segments"
                    if bl is not None
                    else "-",
                    f"{w['requests']:,} ({w['errors']})",
                    _f(w["p50_ms"], 2),
                    _f(w["p99_ms"], 2),
                    _f(w["max_ms"], 1),
                    _f(r.get("store_ready_s"), 2),
                    _f(r.get("first_stored_s"), 2),
                    _f(r.get("drain_s"), 2),
                    f"{_f(dur['p50_ms'], 2)} / {_f(dur['p99_ms'], 2)} ({dur['requests']})"
                    if dur
                    else "-",
                    f"{_f(aft['p50_ms'], 2)} / {_f(aft['p99_ms'], 2)}" if aft else "-",
                    stored,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def timeline_text(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        if r["kind"] != "backlog":
            continue
        cells = [f"{t['second']}s {t['p50_ms']:.1f}/{t['p99_ms']:.1f}" for t in r["timeline"]]
        out.append(
            "Per-second p50/p99 ms of the probe after SeaweedFS was restarted (backlog run): "
            + ", ".join(cells)
            + "."
        )
        sizes = ", ".join(f"{b / 2**20:.1f}" for b in r.get("backlog_segment_sizes", []))
        out.append(
            f"\nBacklog segment sizes (MiB): {sizes}. Built in {r['build_s']:.1f} s; "
            f"{r['failures_during_outage']:.0f} failed store attempts during the outage."
        )
        spy = r.get("py_spy")
        if spy:
            hot = "; ".join(f"`{f}` {c}" for f, c in spy["main_leaves"][:8])
            out.append(
                f"\npy-spy of the sidecar over the backlog run's probe ({spy['main_samples']} "
                f"samples of the event loop thread at 250 Hz, i.e. 4 ms each, "
                f"{spy['main_in_uvloop']} of them inside uvloop): hottest leaf frames "
                f"(samples): {hot}."
            )
    return "\n".join(out)


def foreign_cpu(busy0: tuple[float, float], own0: float, t0: float) -> str:
    """How much CPU other people's processes took during the run (machine busy minus ours)."""
    busy1, own1 = machine_busy(), own_cpu_seconds()
    wall = time.monotonic() - t0
    busy = (busy1[0] - busy0[0]) / CLK_TCK
    others = max(0.0, busy - (own1 - own0))
    cores = os.cpu_count() or 1
    return (
        f"- CPU over the whole run ({wall:.0f} s): {busy:.0f} core-seconds busy, of which "
        f"{others:.0f} by processes this benchmark did not start "
        f"({others / (wall * cores):.0%} of the machine)"
    )


def machine_facts(load_start: tuple[float, ...], waited: float, bench: Bench) -> list[str]:
    model = cpu_model()
    weed = "?"
    with contextlib.suppress(Exception):
        from harness.seaweed import weed_binary

        weed = (
            subprocess.run(
                [str(weed_binary()), "version"], capture_output=True, text=True, timeout=10
            )
            .stdout.strip()
            .splitlines()[0]
        )
    pin = (
        f"sidecar on CPU {bench.sidecar_cpu}; wrk, probe, origin and SeaweedFS on CPU "
        f"{bench.load_cpu}"
        if bench.pin
        else "none (every process may use both CPUs)"
    )
    return [
        f"- Machine: nproc {os.cpu_count()}, CPU {model}, Python {platform.python_version()}, "
        f"{weed}",
        f"- Load average (1/5/15 min) at start: {load_text(load_start)}"
        f" (after waiting {waited:.0f} s for a quiet moment); at end: {load_text()}",
        f"- CPU pinning: {pin}",
    ]


def render(
    opts: Options,
    argv: Sequence[str],
    tp: list[dict[str, Any]],
    lat: list[dict[str, Any]],
    facts: list[str],
) -> str:
    cmd = shlex.join([".venv/bin/python", "bench/capture/run.py", *argv])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        SECTION,
        "",
        f"Recorded {when} with `{cmd}` (see bench/capture/README.md for what each column means).",
        "",
        *facts,
        f"- Sidecar: `--spool.max-segment-age-seconds {opts.segment_age:g}`, "
        f"`--store.retry-max-seconds {opts.retry_max:g}`, other options default "
        "(16 MiB segments, 4 concurrent uploads, fsync on); SeaweedFS `weed mini` over plain "
        "HTTP on 127.0.0.1; origin: nginx answering each POST with a body of the same size, "
        "so a record holds both (about 2x the payload).",
        "",
    ]
    if tp:
        parts += [
            f"### Throughput: wrk -t1 -c{opts.connections} -d{opts.duration}s, POST text/csv",
            "",
            "Records and bytes are counted in the bucket (every object downloaded, lines "
            "counted); rates are over the window from wrk's first request to the last object "
            "stored (tail = from wrk's end to the last object). MB = 10^6 bytes. The check "
            "compares bucket lines, the sidecar's upload and spool counters and its 2xx count.",
            "",
            throughput_table(tp),
            "",
        ]
    if lat:
        parts += [
            f"### Latency while a backlog drains: {opts.probe_rate:g} req/s of "
            f"{opts.probe_size} for {opts.probe_seconds:g} s (open loop)",
            "",
            "Latency counts from when each request was due, so a stall shows up in full. "
            f"Backlog: SeaweedFS stopped, {opts.backlog_size} bodies at 100 % capture until "
            f"the spool held {opts.backlog_mb:g} MB of sealed segments; then the probe and "
            "SeaweedFS's restart start together. Store ready / first object / drain are "
            "seconds from that moment; 'while draining' are the requests due before the last "
            "backlog segment was stored.",
            "",
            latency_table(lat, opts),
            "",
            timeline_text(lat),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"


# -------------------------------------------------------------------------------------------------
# main


def wait_for_quiet(max_wait: float, max_load: float) -> float:
    """Poll the 1-min load every 60 s until it is at most ``max_load``; returns seconds waited."""
    start = time.monotonic()
    while os.getloadavg()[0] > max_load and time.monotonic() - start + 60 <= max_wait:
        print(
            f"load {os.getloadavg()[0]:.2f} > {max_load}: waiting 60 s "
            f"({time.monotonic() - start:.0f}/{max_wait:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(60)
    return time.monotonic() - start


def _clean_env() -> None:
    # Only this process and its children: no developer AWS profile or endpoint may leak in.
    for name in list(os.environ):
        if name.startswith(("AWS_", "MODELTAP_")):
            del os.environ[name]


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--probe"]:
        return probe_main(argv[1:])
    opts = parse_args(argv)
    for tool in (WRK, NGINX):
        if not Path(tool).exists():
            print(f"missing {tool}: make system-deps installs it", file=sys.stderr)
            return 2
    if opts.py_spy and not Path(sys.executable).with_name("py-spy").exists():
        print("--py-spy needs py-spy in the venv: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    _clean_env()
    waited = wait_for_quiet(opts.wait_quiet, opts.max_load) if opts.wait_quiet > 0 else 0.0
    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", file=sys.stderr, flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    bench = Bench(opts, work)
    tp: list[dict[str, Any]] = []
    lat: list[dict[str, Any]] = []
    ok = False
    busy0, own0, t0 = machine_busy(), own_cpu_seconds(), time.monotonic()
    try:
        bench.start()
        if "throughput" in opts.parts:
            tp = run_throughput(bench)
        if "latency" in opts.parts:
            lat = run_latency(bench)
        ok = True
    finally:
        bench.stop()
        raw = work / "results.json"
        with contextlib.suppress(Exception):
            raw.write_text(json.dumps({"throughput": tp, "latency": lat}, indent=1, default=str))
        if opts.keep or not ok:
            print(f"work dir kept: {work} (logs/, results.json)", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    # After stop(): every process the bench started has been reaped, so its CPU time is known.
    facts = [*machine_facts(load_start, waited, bench), foreign_cpu(busy0, own0, t0)]
    text = render(opts, argv, tp, lat, facts)
    print(text)
    if opts.record:
        write_section(opts.results, SECTION, text)
        print(f"recorded in {opts.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
