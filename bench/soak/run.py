"""Soak: fixed-rate traffic through the sidecar at 100 % capture while the S3 store flaps.

A bounded load test (default 10 minutes at 200 req/s, 1 KB CSV bodies, each with a unique
``X-Inference-Id``) through a real sidecar into a real S3 (SeaweedFS ``weed mini``). The sidecar's
store endpoint is harness/faulty_proxy.py in front of SeaweedFS. Every ``--flap-seconds``
(30) the store switches between healthy and one of four faults, in turn:

- ``kill``: SeaweedFS is SIGKILLed, then restarted at the end of the fault period;
- ``503``: every S3 call is answered 503 SlowDown by the proxy;
- ``reset``: the proxy cuts every S3 connection without an answer;
- ``term``: SeaweedFS is stopped (SIGTERM), then restarted.

Meanwhile the sidecar's RSS (``/proc/<pid>/status`` VmRSS) and spool size are sampled every
``--sample-seconds`` (5). At the end the store is healthy, the sidecar uploads its backlog and is
stopped (SIGTERM: it seals and uploads its open segment), and every object under the capture
prefix is read back. Printed: records sent vs stored, exact by inference id (missing, duplicated,
stored without a 200); errors by kind (client side, and the sidecar's failed store attempts by
reason); RSS per minute (min/median/max) with spool size and the faults of that minute; and
whether memory was flat.

Every process it starts (SeaweedFS, the fault proxy, the upstream, the sidecar) is stopped by
pid at the end, also when the run fails or is interrupted. See bench/soak/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import gzip
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    add_record_flags,
    capture_objects,
    csv_body,
    git,
    load_text,
    sidecar_args,
    sidecar_env,
    stop_proc,
    write_section,
)
from harness.metrics import scrape, value  # noqa: E402
from harness.procs import PYTHON, Proc, free_port, start_ready  # noqa: E402
from harness.seaweed import SeaweedS3  # noqa: E402

SECTION = "## bench/soak"
BUCKET = "soak"
PREFIX = "captures"
FAULTS = ("kill", "503", "reset", "term")
MIB = 1024 * 1024
# Flat memory (see flatness()): over the second half of the run the per-minute median RSS grows
# by at most this much, and a least-squares fit rises under 1 MiB/min.
FLAT_GROWTH_MIB = 16.0
FLAT_SLOPE_MIB_PER_MIN = 1.0


@dataclass(frozen=True)
class Options:
    duration: float
    rate: float
    body_bytes: int
    flap_seconds: float
    sample_seconds: float
    retry_max: float
    segment_age: float
    drain_timeout: float
    max_inflight: int
    record: bool
    results: Path
    keep: bool


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (600)")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    p.add_argument("--body-bytes", type=int, default=1024, help="request body size (1024)")
    p.add_argument("--flap-seconds", type=float, default=30.0, help="healthy/fault period (30)")
    p.add_argument("--sample-seconds", type=float, default=5.0, help="RSS sample interval (5)")
    p.add_argument(
        "--retry-max", type=float, default=5.0, help="sidecar store.retry-max-seconds (5)"
    )
    p.add_argument(
        "--segment-age",
        type=float,
        default=10.0,
        help="sidecar spool.max-segment-age-seconds (10; default 60), so uploads run all along",
    )
    p.add_argument(
        "--drain-timeout", type=float, default=180.0, help="wait this long for the backlog (180)"
    )
    p.add_argument(
        "--max-inflight", type=int, default=1000, help="requests in flight at most (1000)"
    )
    add_record_flags(p)
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    a = p.parse_args(argv)
    if a.duration <= 0 or a.rate <= 0 or a.flap_seconds <= 0 or a.sample_seconds <= 0:
        p.error("--duration, --rate, --flap-seconds and --sample-seconds must be > 0")
    return Options(
        duration=a.duration,
        rate=a.rate,
        body_bytes=a.body_bytes,
        flap_seconds=a.flap_seconds,
        sample_seconds=a.sample_seconds,
        retry_max=a.retry_max,
        segment_age=a.segment_age,
        drain_timeout=a.drain_timeout,
        max_inflight=a.max_inflight,
        record=not a.no_record,
        results=a.results,
        keep=a.keep,
    )


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    """A memory figure of ``/proc/<pid>/status`` (VmRSS: now, VmHWM: peak) in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def dir_mib(path: Path) -> float:
    total = 0
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                total += p.stat().st_size
    return total / MIB


# -------------------------------------------------------------------------------------------------
# the run


@dataclass
class Sample:
    t: float  # seconds since traffic started
    rss_mib: float
    spool_mib: float


@dataclass
class Run:
    """Everything measured; filled in while the soak runs."""

    ok_ids: set[str] = field(default_factory=set)
    sent: int = 0
    client_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    late_starts: int = 0  # requests started more than 100 ms after their slot (client saturated)
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    fault_minutes: dict[int, list[str]] = field(default_factory=dict)
    ok_by_minute: collections.Counter[int] = field(default_factory=collections.Counter)
    err_by_minute: collections.Counter[int] = field(default_factory=collections.Counter)


class Soak:
    def __init__(self, opts: Options, work: Path) -> None:
        self.opts = opts
        self.work = work
        self.s3 = SeaweedS3(work / "seaweed")
        self.procs: list[Proc] = []
        self.run = Run()
        self.t0 = 0.0
        self.spool = work / "spool"
        self.faults_url = ""
        self.proxy_url = ""
        self.admin_url = ""
        self.sidecar: Proc | None = None

    # -- processes -----------------------------------------------------------------------------
    def start(self) -> None:
        self.s3.start()
        self.s3.create_bucket(BUCKET)
        fport, uport, port, admin = free_port(), free_port(), free_port(), free_port()
        self.faults_url = f"http://127.0.0.1:{fport}/__fault__"
        faulty_argv = [PYTHON, "-m", "harness.faulty_proxy", str(fport), self.s3.endpoint_url]
        self.procs.append(start_ready("faulty-proxy", faulty_argv, self.work, self.faults_url))
        upstream_argv = [PYTHON, "-m", "harness.upstream", str(uport)]
        ping = f"http://127.0.0.1:{uport}/ping"
        self.procs.append(start_ready("upstream", upstream_argv, self.work, ping))
        args = sidecar_args(
            upstream=f"http://127.0.0.1:{uport}",
            port=port,
            admin_port=admin,
            spool=self.spool,
            destination=f"s3://{BUCKET}/{PREFIX}",
            endpoint_url=f"http://127.0.0.1:{fport}",
            region=self.s3.region,
            percent=100.0,
            segment_age=self.opts.segment_age,
            retry_max=self.opts.retry_max,
        )
        argv = [PYTHON, "-m", "sidecar", *args, "--capture.endpoint-name", "soak"]
        env = sidecar_env(self.s3, self.work)
        self.proxy_url = f"http://127.0.0.1:{port}"
        self.admin_url = f"http://127.0.0.1:{admin}"
        self.sidecar = start_ready("sidecar", argv, self.work, f"{self.admin_url}/readyz", env=env)
        self.procs.append(self.sidecar)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop_proc(proc, 30.0)
        self.s3.cleanup()

    # -- traffic -------------------------------------------------------------------------------
    async def traffic(self) -> None:
        opts, run = self.opts, self.run
        bodies = [csv_body(opts.body_bytes, seed=k) for k in range(64)]
        total = int(opts.duration * opts.rate)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(opts.max_inflight)
        pending: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=opts.max_inflight)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

            async def one(n: int) -> None:
                rid = f"soak-{n:08d}"
                started = loop.time()
                minute = int((started - self.t0) // 60)
                try:
                    async with session.post(
                        f"{self.proxy_url}/echo",
                        data=bodies[n % len(bodies)],
                        headers={"Content-Type": "text/csv", "X-Inference-Id": rid},
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            run.ok_ids.add(rid)
                            run.ok_by_minute[minute] += 1
                            run.latencies.append(loop.time() - started)
                        else:
                            run.client_errors[f"HTTP {resp.status}"] += 1
                            run.err_by_minute[minute] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    run.client_errors[type(exc).__name__] += 1
                    run.err_by_minute[minute] += 1
                finally:
                    slots.release()

            for n in range(total):
                due = self.t0 + n / opts.rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.1:
                    run.late_starts += 1
                await slots.acquire()
                run.sent += 1
                task = loop.create_task(one(n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending, timeout=60)

    # -- the store flapping ----------------------------------------------------------------------
    async def fault(self, session: aiohttp.ClientSession, spec: dict[str, Any]) -> None:
        async with session.post(self.faults_url, json=spec) as resp:
            resp.raise_for_status()

    async def flap(self, stop: asyncio.Event) -> None:
        """Healthy and faulty periods in turn until ``stop``; leaves the store healthy."""
        loop = asyncio.get_running_loop()
        period = self.opts.flap_seconds
        async with aiohttp.ClientSession() as session:
            k = 0
            max_periods = int(self.opts.duration / period) + 2
            while k < max_periods and not stop.is_set():
                kind = FAULTS[(k // 2) % len(FAULTS)] if k % 2 else ""
                if kind:
                    self.note(f"fault {kind} begins")
                    minute = int((loop.time() - self.t0) // 60)
                    self.run.fault_minutes.setdefault(minute, []).append(kind)
                    if kind == "kill":
                        await asyncio.to_thread(self.s3.kill)
                    elif kind == "term":
                        await asyncio.to_thread(self.s3.stop)
                    elif kind == "503":
                        await self.fault(session, {"status": 503, "code": "SlowDown",
                                                   "count": 10**9})  # fmt: skip
                    else:
                        await self.fault(session, {"reset": True, "count": 10**9})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.t0 + (k + 1) * period - loop.time())
                if kind:
                    await self.heal(session, kind)
                k += 1

    async def heal(self, session: aiohttp.ClientSession, kind: str) -> None:
        if kind in ("kill", "term"):
            started = time.monotonic()
            await asyncio.to_thread(self.s3.start, 60.0)
            self.note(f"fault {kind} ends (SeaweedFS ready in {time.monotonic() - started:.1f} s)")
        else:
            await self.fault(session, {"count": 0})
            self.note(f"fault {kind} ends")

    def note(self, text: str) -> None:
        t = asyncio.get_running_loop().time() - self.t0
        self.run.events.append((t, text))
        print(f"[{t:7.1f} s] {text}", flush=True)

    # -- sampling ----------------------------------------------------------------------------------
    async def sample(self, stop: asyncio.Event) -> None:
        assert self.sidecar is not None
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            rss = rss_mib(self.sidecar.pid)
            if rss is not None and loop.time() >= self.t0:
                spool = await asyncio.to_thread(dir_mib, self.spool)
                self.run.samples.append(Sample(loop.time() - self.t0, rss, spool))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.opts.sample_seconds)

    async def soak(self) -> None:
        loop = asyncio.get_running_loop()
        self.t0 = loop.time() + 0.5
        stop = asyncio.Event()
        flapper = loop.create_task(self.flap(stop))
        sampler = loop.create_task(self.sample(stop))
        try:
            await self.traffic()
        finally:
            stop.set()
            await asyncio.gather(flapper, sampler, return_exceptions=True)
        self.note("traffic done; store healthy")

    # -- the end -----------------------------------------------------------------------------------
    def drain(self) -> dict[str, float]:
        """Wait until the sidecar uploaded everything it spooled, then stop it (SIGTERM)."""
        assert self.sidecar is not None
        deadline = time.monotonic() + self.opts.drain_timeout
        started = time.monotonic()
        metrics = scrape(self.admin_url)
        while time.monotonic() < deadline:
            metrics = scrape(self.admin_url)
            spooled = value(metrics, "modeltap_sidecar_capture_records_total", outcome="spooled")
            uploaded = value(metrics, "modeltap_sidecar_upload_records_total")
            if uploaded >= spooled and self.run.ok_ids and spooled >= len(self.run.ok_ids):
                break
            time.sleep(1.0)
        drained_in = time.monotonic() - started
        peak = rss_mib(self.sidecar.pid, "VmHWM")
        rc = self.sidecar.stop(60.0)
        out = {
            "drain_seconds": drained_in,
            "sidecar_exit": float(rc if rc is not None else -1),
            "spool_mib_after": dir_mib(self.spool),
            "rss_peak_mib": peak if peak is not None else float("nan"),
        }
        for (name, labels), v in metrics.items():
            if name == "modeltap_sidecar_capture_records_total":
                out[f"capture {dict(labels)['outcome']}"] = v
            elif name == "modeltap_sidecar_upload_failures_total":
                out[f"store failure {dict(labels)['reason']}"] = v
            elif name in (
                "modeltap_sidecar_upload_retries_total",
                "modeltap_sidecar_upload_objects_total",
                "modeltap_sidecar_upload_records_total",
            ):
                out[name.removeprefix("modeltap_sidecar_").removesuffix("_total")] = v
        return out

    def stored_ids(self) -> tuple[collections.Counter[str], int]:
        """Inference ids of every record under the capture prefix, and how many objects."""
        ids: collections.Counter[str] = collections.Counter()
        objects = 0
        with contextlib.closing(self.s3.client()) as client:
            for obj in capture_objects(client, BUCKET, PREFIX):
                objects += 1
                data = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
                if obj["Key"].endswith(".gz"):
                    data = gzip.decompress(data)
                for line in data.splitlines():
                    ids[orjson.loads(line)["eventMetadata"]["inferenceId"]] += 1
        return ids, objects


# -------------------------------------------------------------------------------------------------
# report


def minute_table(run: Run) -> tuple[list[str], list[float]]:
    by_minute: dict[int, list[Sample]] = collections.defaultdict(list)
    for s in run.samples:
        by_minute[int(s.t // 60)].append(s)
    lines = [
        "| minute | RSS min MiB | RSS median MiB | RSS max MiB | spool max MiB | 200s | errors | faults |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    medians = []
    for m in sorted(by_minute):
        rss = [s.rss_mib for s in by_minute[m]]
        medians.append(statistics.median(rss))
        lines.append(
            f"| {m + 1} | {min(rss):.1f} | {statistics.median(rss):.1f} | {max(rss):.1f} | "
            f"{max(s.spool_mib for s in by_minute[m]):.1f} | {run.ok_by_minute[m]:,} | "
            f"{run.err_by_minute[m]:,} | {', '.join(run.fault_minutes.get(m, [])) or '-'} |"
        )
    return lines, medians


def flatness(run: Run, medians: list[float]) -> tuple[bool, str]:
    """Flat in the second half of the run, and how much RSS grew before it (warm-up).

    The first half is warm-up: the allocator's high-water mark settles once the largest backlog
    the flapping builds has been uploaded. Judged on the second half: the per-minute median RSS
    grows by at most FLAT_GROWTH_MIB and a least-squares fit rises under FLAT_SLOPE_MIB_PER_MIN.
    """
    if len(medians) < 4:
        return False, "too short to judge (needs 4 minutes)"
    half = len(medians) // 2
    later = [s for s in run.samples if s.t >= half * 60]
    slope = statistics.linear_regression(
        [s.t / 60 for s in later], [s.rss_mib for s in later]
    ).slope
    growth = medians[-1] - medians[half]
    flat = growth <= FLAT_GROWTH_MIB and slope < FLAT_SLOPE_MIB_PER_MIN
    return flat, (
        f"second half (minutes {half + 1}-{len(medians)}): median RSS {medians[half]:.1f} -> "
        f"{medians[-1]:.1f} MiB ({growth:+.1f} MiB; flat means <= {FLAT_GROWTH_MIB:.0f}), "
        f"least-squares slope {slope:+.2f} MiB/min (flat means < {FLAT_SLOPE_MIB_PER_MIN:.0f}); "
        f"warm-up: minute 1 median {medians[0]:.1f} MiB, highest minute median "
        f"{max(medians):.1f} MiB (minute {medians.index(max(medians)) + 1})"
    )


def report(opts: Options, soak: Soak, end: dict[str, float], stored: collections.Counter[str],
           objects: int, wall: float, argv: Sequence[str]) -> tuple[str, bool]:  # fmt: skip
    run = soak.run
    ok = run.ok_ids
    stored_set = set(stored)
    missing = ok - stored_set
    dupes = sum(c - 1 for c in stored.values() if c > 1)
    extra = stored_set - ok
    lines_rss, medians = minute_table(run)
    flat, why = flatness(run, medians)
    lat = sorted(run.latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    commit = git("rev-parse", "--short", "HEAD")
    cmd = " ".join(["bench/soak/run.py", *argv]).strip()
    lost_none = not missing and dupes == 0
    out = [
        SECTION,
        "",
        f"Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `.venv/bin/python {cmd}` "
        f"({opts.duration:.0f} s at {opts.rate:.0f} req/s, {opts.body_bytes} B CSV bodies, 100 % "
        f"capture, store flapping every {opts.flap_seconds:.0f} s: {', '.join(FAULTS)} in turn; "
        f"sidecar `store.retry-max-seconds={opts.retry_max:g}`, "
        f"`spool.max-segment-age-seconds={opts.segment_age:g}`, other options default). "
        f"Machine: {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
        f"{platform.python_version()}; commit {commit}; wall time {wall:.0f} s; load average at "
        f"end {load_text()}.",
        "",
        "| records | count |",
        "|---|---:|",
        f"| requests sent | {run.sent:,} |",
        f"| answered 200 | {len(ok):,} |",
        f"| stored (unique inference ids) | {len(stored_set):,} in {objects:,} objects |",
        f"| answered 200 and stored | {len(ok & stored_set):,} |",
        f"| **answered 200, not stored (lost)** | **{len(missing):,}** |",
        f"| stored twice or more (extra copies) | {dupes:,} |",
        f"| stored without a 200 to the client | {len(extra):,} |",
        "",
        "| errors by kind | count |",
        "|---|---:|",
        *(f"| client: {k} | {v:,} |" for k, v in sorted(run.client_errors.items())),
        *(
            f"| sidecar: {k} | {v:,.0f} |"
            for k, v in sorted(end.items())
            if k.startswith("store failure")
            or (k.startswith("capture ") and k != "capture spooled")
        ),
        f"| sidecar: store attempts retried | {end.get('upload_retries', 0):,.0f} |",
        f"| client: requests started > 100 ms late | {run.late_starts:,} |",
        "",
        f"Latency of the 200s: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max "
        f"{pct(1.0):.1f} ms. Backlog uploaded {end['drain_seconds']:.1f} s after the traffic "
        f"stopped; sidecar exit status {end['sidecar_exit']:.0f}; spool left "
        f"{end['spool_mib_after']:.2f} MiB. Sidecar peak RSS (VmHWM) {end['rss_peak_mib']:.1f} MiB.",
        "",
        f"Sidecar RSS (sampled every {opts.sample_seconds:g} s) per minute:",
        "",
        *lines_rss,
        "",
        f"**Memory {'flat' if flat else 'NOT flat'}**: {why}. **Records: "
        f"{'nothing lost' if lost_none else f'{len(missing)} lost, {dupes} duplicated'}.**",
        "",
    ]
    return "\n".join(out), flat and lost_none


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(args)

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    work = Path(tempfile.mkdtemp(prefix="mt-soak-"))
    soak = Soak(opts, work)
    keep = opts.keep
    started = time.monotonic()
    try:
        soak.start()
        print(f"soak: {opts.duration:.0f} s at {opts.rate:.0f} req/s; work dir {work}", flush=True)
        asyncio.run(soak.soak())
        end = soak.drain()
        stored, objects = soak.stored_ids()
    except BaseException:
        print(f"soak failed; logs in {work}", file=sys.stderr)
        keep = True
        raise
    finally:
        soak.stop_all()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    text, passed = report(opts, soak, end, stored, objects, time.monotonic() - started, args)
    print(text)
    if opts.record:
        write_section(opts.results, SECTION, text)
        print(f"recorded in {opts.results}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
