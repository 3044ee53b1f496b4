"""Proxy benchmark: direct vs the sidecar at 0/10/100 % capture vs nginx, driven by wrk.

Prints one side-by-side table and records it in bench/RESULTS.md (section ``## bench/proxy``).
See bench/proxy/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httptools
import uvloop

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import loadgen  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
from procs import Pinning, choose_pinning  # noqa: E402

from bench.common import (  # noqa: E402
    NGINX,
    WRK,
    cpu_model,
    cpu_seconds,
    git,
    load_text,
    main_thread_cpu_seconds,
    usable_cores,
    write_section,
)
from harness.procs import Proc  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR.parent / "RESULTS.md"
SIZES = {"1KB": 1024, "100KB": 100 * 1024}
CAPTURE_PERCENTS = (0.0, 10.0, 100.0)
# The sidecar targets run `make compiled`'s tree (the request path compiled, as the image ships
# it); this one runs the checkout's pure Python at 100 %, to show what compiling buys.
COMPILED_TREE = BENCH_DIR.parents[1] / "build" / "compiled"
PURE = "sidecar 100% (pure)"
BASELINE_PERCENTS = (0.0, 100.0)  # run from --baseline's tree too
WRITER_NICE = "sidecar 100% (writer_nice {})"  # --writer-nice's column
TARGET_ORDER = (
    "direct",
    "sidecar 0%",
    "sidecar 0% (baseline)",
    "sidecar 10%",
    "sidecar 100%",
    "sidecar 100% (baseline)",
    WRITER_NICE,
    PURE,
    "nginx",
    "python floor",
)


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    connections: list[int]
    sizes: dict[str, int]
    repeat: int
    pin: bool
    record: bool
    profile_seconds: int
    profile_connections: int
    profile_native: bool
    results: Path
    keep: bool
    baseline: Path | None
    writer_nice: int | None


def _order(name: str) -> int:
    """A target's place in the table (the --writer-nice column under its template)."""
    if name.startswith("sidecar 100% (writer_nice "):
        return TARGET_ORDER.index(WRITER_NICE)
    return TARGET_ORDER.index(name)


@dataclass
class Bench:
    """The running processes and where things live."""

    prefix: Path
    pin: Pinning
    targets: list[servers.Target]
    stores: dict[str, Path]
    scripts: dict[str, Path]


def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--duration", type=int, default=5, help="seconds of wrk per cell (default 5)")
    p.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk before each cell (0: none)"
    )
    p.add_argument("--connections", default="1,16,64", help="wrk connections, comma-separated")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"body sizes among {list(SIZES)}")
    p.add_argument("--repeat", type=int, default=1, help="rounds over the grid; cells are medians")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md")
    p.add_argument("--profile", type=int, default=0, metavar="SECONDS", help="py-spy the sidecar")
    p.add_argument("--profile-connections", type=int, default=16)
    p.add_argument("--profile-native", action="store_true", help="py-spy --native")
    p.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        help="also run the 0%% and 100%% sidecars from TREE (another `make compiled` build)",
    )
    p.add_argument(
        "--writer-nice",
        type=int,
        metavar="N",
        help="also run a compiled 100%% sidecar with spool.writer_nice N (e.g. 0: capture "
        "shares a saturated core equally with serving)",
    )
    a = p.parse_args(argv)
    sizes = {label: SIZES[label] for label in a.sizes.split(",")}
    return Options(
        duration=a.duration,
        warmup=a.warmup,
        connections=[int(c) for c in a.connections.split(",")],
        sizes=sizes,
        repeat=a.repeat,
        pin=not a.no_pin,
        record=not a.no_record,
        profile_seconds=a.profile,
        profile_connections=a.profile_connections,
        profile_native=a.profile_native,
        results=a.results,
        keep=a.keep,
        baseline=a.baseline.resolve() if a.baseline else None,
        writer_nice=a.writer_nice,
    )


# -- processes -------------------------------------------------------------------------------
@contextlib.contextmanager
def started(opts: Options, prefix: Path) -> Iterator[Bench]:
    """Start the origin, the nginx proxy and one sidecar per capture level; stop each by pid."""
    pin = choose_pinning(opts.pin)
    www = prefix / "www"
    servers.write_bodies(www, opts.sizes)
    probe = f"{next(iter(opts.sizes))}.csv"
    procs: list[Proc] = []
    try:
        origin, direct = servers.start_origin(prefix, www, probe, pin)
        procs.append(origin)
        proxy, nginx = servers.start_nginx_proxy(prefix, direct.base_url, probe, pin)
        procs.append(proxy)
        floor_proc, floor = servers.start_floor(prefix, direct.base_url, probe, pin)
        procs.append(floor_proc)
        targets, stores = [direct, nginx, floor], {}
        runs: list[tuple[float, Path, str, int | None]] = [
            (p, COMPILED_TREE, "", None) for p in CAPTURE_PERCENTS
        ]
        runs.append((100.0, servers.REPO, "pure", None))
        if opts.baseline is not None:
            runs.extend((p, opts.baseline, "baseline", None) for p in BASELINE_PERCENTS)
        if opts.writer_nice is not None:
            nice = opts.writer_nice
            runs.append((100.0, COMPILED_TREE, f"writer_nice {nice}", nice))
        for percent, tree, label, writer_nice in runs:
            proc, target, store = servers.start_sidecar(
                prefix, direct.base_url, percent, pin, tree, label, writer_nice
            )
            procs.append(proc)
            targets.append(target)
            stores[target.name] = store
        targets.sort(key=lambda t: _order(t.name))
        scripts = {
            label: loadgen.write_script(prefix, label, www / f"{label}.csv") for label in opts.sizes
        }
        yield Bench(prefix, pin, targets, stores, scripts)
    finally:
        for proc in reversed(procs):
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping {proc.name} (pid {proc.pid}) failed: {exc}", file=sys.stderr)


def check_targets(bench: Bench, sizes: dict[str, int]) -> None:
    """One POST per target and size: status 200 and the whole body back."""
    for target in bench.targets:
        for label, size in sizes.items():
            body = servers.csv_body(size)
            req = urllib.request.Request(
                f"{target.base_url}/{label}.csv",
                data=body,
                headers={"Content-Type": "text/csv"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                got = resp.read()
            if resp.status != 200 or got != body:
                raise RuntimeError(f"{target.name} {label}: {resp.status}, {len(got)} bytes")


# -- measurement -----------------------------------------------------------------------------
def _settle(target: servers.Target) -> servers.CaptureCounts | None:
    """For a sidecar: wait until it has spooled and stored what it captured (CPU counted)."""
    if target.admin_url is None or target.cpu_pid is None:
        return None
    return servers.settle(target.admin_url, target.cpu_pid)


def measure(
    bench: Bench, target: servers.Target, label: str, conns: int, opts: Options
) -> report.Sample:
    """Warm up, then one bounded wrk run with the target's CPU time read before and after."""
    url = f"{target.base_url}/{label}.csv"
    script = bench.scripts[label]
    if opts.warmup:
        loadgen.run_wrk(url, script, conns, opts.warmup, bench.pin)
    before = _settle(target)
    cpu0, loop0 = _cpu(target)
    result = loadgen.run_wrk(url, script, conns, opts.duration, bench.pin)
    after = _settle(target)
    cpu1, loop1 = _cpu(target)
    if target.name in bench.stores:
        servers.delete_stored(bench.stores[target.name])
    n = max(result.requests, 1)
    spooled = after.spooled - before.spooled if before and after else None
    captured = spooled / n if spooled is not None else None
    dropped = after.dropped - before.dropped if before and after else 0.0
    # A sidecar's CPU split: its event loop (the main thread) per request, and everything else
    # (the spool writer, the uploader's file work) per record written.
    is_sidecar = target.admin_url is not None
    others = cpu1 - cpu0 - (loop1 - loop0) if is_sidecar else None
    return report.Sample(
        rps=result.rps,
        p50_us=result.p50_us,
        p99_us=result.p99_us,
        requests=result.requests,
        errors=result.errors + result.non_2xx,
        cpu_us=(cpu1 - cpu0) / n * 1e6 if target.name != "direct" else None,
        captured=captured,
        dropped=dropped,
        loop_us=(loop1 - loop0) / n * 1e6 if is_sidecar else None,
        capture_us=others / spooled * 1e6 if others is not None and spooled else None,
    )


def _cpu(target: servers.Target) -> tuple[float, float]:
    """CPU seconds of the target's process and of its main thread (0 when it has none)."""
    if not target.cpu_pid:
        return 0.0, 0.0
    return cpu_seconds(target.cpu_pid), main_thread_cpu_seconds(target.cpu_pid)


def run_grid(bench: Bench, opts: Options) -> report.Grid:
    """Every cell, ``repeat`` times; targets take turns within a cell (order rotates per round)."""
    samples: dict[report.Key, list[report.Sample]] = defaultdict(list)
    for round_no in range(opts.repeat):
        for label in opts.sizes:
            for conns in opts.connections:
                shift = round_no % len(bench.targets)
                for target in bench.targets[shift:] + bench.targets[:shift]:
                    sample = measure(bench, target, label, conns, opts)
                    samples[(label, conns, target.name)].append(sample)
                    print(f"  {label:>5} c={conns:<3} {target.name:<13} {sample}", file=sys.stderr)
    cells = {key: report.aggregate(found) for key, found in samples.items()}
    return report.Grid(cells, list(opts.sizes), opts.connections, [t.name for t in bench.targets])


def run_profile(bench: Bench, opts: Options) -> str:
    """Per-thread CPU of the 100% sidecar for each body size, then py-spy --gil with 1 KB bodies
    (on the pure-Python one)."""
    target = next(t for t in bench.targets if t.name == "sidecar 100%")
    assert target.cpu_pid is not None and target.admin_url is not None
    pid, admin, conns = target.cpu_pid, target.admin_url, opts.profile_connections
    store = bench.stores[target.name]
    parts = [
        f"Sidecar at 100% capture under wrk with {conns} connections, {opts.profile_seconds} s "
        "per measurement."
    ]
    for label in opts.sizes:
        split = profiling.thread_split(
            pid,
            f"{target.base_url}/{label}.csv",
            bench.scripts[label],
            conns,
            opts.profile_seconds,
            bench.pin,
            settle=lambda: servers.settle(admin, pid),
        )
        servers.delete_stored(store)
        parts += [f"**CPU by thread, {label} bodies** (no profiler attached): {split}"]
        if profiling.PERF is not None:
            summary = profiling.perf_threads(
                pid,
                f"{target.base_url}/{label}.csv",
                bench.scripts[label],
                conns,
                opts.profile_seconds,
                bench.prefix / f"perf-{label}.data",
                bench.pin,
            )
            servers.settle(admin, pid)
            servers.delete_stored(store)
            parts += [
                f"**perf record at 999 Hz, {label} bodies, the compiled sidecar** (native self "
                "time per thread: the compiled request path, orjson, CPython, the kernel; "
                "percentages of that thread's samples):\n\n" + summary
            ]
    # py-spy sees Python frames only: the pure-Python sidecar shows where the time goes by function
    pure = next(t for t in bench.targets if t.name == PURE)
    assert pure.cpu_pid is not None and pure.admin_url is not None
    pid, admin, store = pure.cpu_pid, pure.admin_url, bench.stores[pure.name]
    label = next(iter(opts.sizes))
    prof = profiling.record(
        pid,
        f"{pure.base_url}/{label}.csv",
        bench.scripts[label],
        conns,
        opts.profile_seconds,
        bench.prefix / "py-spy.txt",
        bench.pin,
        native=opts.profile_native,
    )
    servers.settle(admin, pid)
    servers.delete_stored(store)
    native = " --native" if opts.profile_native else ""
    parts += [
        f"**py-spy record --gil{native} at 250 Hz, {label} bodies, the pure-Python sidecar** "
        "(compiled code has no Python frames to sample; py-spy pauses the process to sample, so throughput drops while it runs; the shares are what count): "
        + profiling.render(prof)
    ]
    return "\n\n".join(parts)


# -- reporting -------------------------------------------------------------------------------
def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (done.stdout + done.stderr).strip().splitlines()[0]


def machine_facts(load_start: tuple[float, float, float], pin: Pinning) -> str:
    cpu = cpu_model()
    return "\n".join(
        [
            f"- Machine: nproc {usable_cores()} (of {os.cpu_count()} CPUs), "
            f"CPU `{cpu}`, Linux {platform.release()}",
            f"- Load average at start: {load_text(load_start)}; "
            f"at end: {load_text()} (the run itself keeps both CPUs "
            "busy, so the value at the end includes it)",
            f"- Software: Python {platform.python_version()}, httptools {httptools.__version__}, "
            f"uvloop {uvloop.__version__}, mypy(c) {importlib.metadata.version('mypy')}, "
            f"{_version([NGINX, '-v'])}, {_version([WRK, '-v'])}",
            f"- Code: {_git_state()}",
            f"- Pinning: {pin.describe()}",
        ]
    )


def _git_state() -> str:
    dirty = git("status", "--porcelain", "--", "sidecar")
    return f"commit {git('rev-parse', '--short', 'HEAD') or '?'}" + (
        ", with uncommitted changes in sidecar/" if dirty else ", sidecar/ as committed"
    )


def section(opts: Options, facts: str, table: str, verdicts: str, notes: str, prof: str) -> str:
    command = ".venv/bin/python bench/proxy/run.py " + shlex.join(sys.argv[1:])
    parts = [
        f"Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command.strip()}` "
        f"(wrk {opts.duration} s per cell after a {opts.warmup} s warm-up, "
        f"{opts.repeat} round(s), medians).",
        "",
        facts,
        "",
        report.METHOD,
        "",
        table,
        "",
        "### Targets",
        "",
        verdicts,
    ]
    if notes:
        parts += ["", "### Dropped captures", "", notes]
    if prof:
        parts += ["", "### Profile", "", prof]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    stale = [
        p.name
        for p in sorted((servers.REPO / "sidecar").glob("*.py"))
        if not (COMPILED_TREE / "sidecar" / p.name).exists()
        or (COMPILED_TREE / "sidecar" / p.name).read_bytes() != p.read_bytes()
    ]
    if stale:
        print(f"{COMPILED_TREE} is missing or older than sidecar/ ({', '.join(stale)}): "
              "run `make compiled` first", file=sys.stderr)  # fmt: skip
        return 2
    if opts.profile_seconds and not Path(profiling.PY_SPY).exists():
        print(f"--profile needs {profiling.PY_SPY} (`make install` puts it there)", file=sys.stderr)
        return 2
    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", file=sys.stderr)
    prefix = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    try:
        with started(opts, prefix) as bench:
            check_targets(bench, opts.sizes)
            grid = run_grid(bench, opts)
            prof = run_profile(bench, opts) if opts.profile_seconds else ""
    finally:
        if opts.keep:
            print(f"kept {prefix}", file=sys.stderr)
        else:
            shutil.rmtree(prefix, ignore_errors=True)
    labels = list(opts.sizes)
    table = report.table(grid)
    verdicts = report.verdicts(grid, labels[0], labels[-1])
    facts = machine_facts(load_start, bench.pin)
    print(table + "\n\n" + verdicts + "\n\n" + facts)
    if prof:
        print("\n" + prof)
    if opts.record:
        body = section(opts, facts, table, verdicts, report.footnotes(grid), prof)
        heading = report.section_heading(cpu_model())
        write_section(opts.results, heading, f"{heading}\n\n{body.strip()}\n")
        print(f"\nrecorded in {opts.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
