"""bench/monitor daemon memory: the monitor daemon's own loop, run after run, and what it holds.

``steady.py`` times the incremental path (``run_window`` with a profile cache) beside full
re-reads; this one asks whether a daemon that runs for weeks holds more memory after each run.
It runs what ``modeltap monitor`` runs on its schedule, ``analyzer.monitor.run_all`` (listing,
the profile cache, the sections, the reports and their retention, the Prometheus collector),
``--runs`` times in **one event loop** (as ``run_forever`` does; ``steady.py`` starts one per
run), on a monitor.toml of ``file://`` stores and a baseline written as ``modeltap baseline``
writes it, with ``--workers`` local processes (``[monitor] workers``: new objects over 32 MiB
are profiled on a process pool started for the run, smaller ones on this process's threads).
Traffic is ``steady.py``'s (the same segments, cached under bench/out/monitor); the window
slides ``--interval`` minutes a run and its newly sealed segments appear before each run.

After each run (and a ``gc.collect()``) one JSON line: RSS (``VmRSS``, what the process holds
now, not its peak), anonymous memory (``/proc/self/smaps_rollup``), glibc's heap
(``mallinfo2``: bytes in use and free bytes kept in its arenas), Arrow's pool
(``bytes_allocated``, ``max_memory``, backend), Python objects (``gc.get_objects``), threads,
the profile cache's in-memory groups and the collector's exported samples. As the daemon does,
``analyzer.heap.settle()`` before the first run and ``release()`` after each (``--before``:
neither, the daemon before them). ``--trim``: also
``malloc_trim(0)`` after each run and RSS after it (what of the RSS is freed memory glibc kept);
after the last run it is always done once.
``--tracemalloc``: Python allocations by line, the growth between run 2 and the last run.

Run it as the analyzer image runs (its environment sets both variables)::

    MALLOC_ARENA_MAX=2 ARROW_DEFAULT_MEMORY_POOL=jemalloc \\
        .venv/bin/python bench/monitor/daemon_memory.py --compiled --rate 300 --runs 30
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import datetime as dt
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.monitor import analyzer_tree  # noqa: E402  (before any analyzer import)

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _Mallinfo2


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rollup(field: str) -> float:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _comm(tid: str) -> str:
    try:
        return Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    except OSError:  # ended meanwhile
        return "?"


def _types() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


def sample(collector: Any) -> dict[str, Any]:
    """What the process holds now (after a full collection)."""
    import pyarrow as pa

    from analyzer import profile_cache

    gc.collect()
    heap = _LIBC.mallinfo2()
    pool = pa.default_memory_pool()
    samples = sum(len(m.samples) for m in collector.collect())
    return {
        "rss_mib": round(_status("VmRSS"), 1),
        "anon_mib": round(_rollup("Anonymous"), 1),
        "glibc_used_mib": round(heap.uordblks / 2**20, 1),  # main arena's and others' in use
        "glibc_free_mib": round(heap.fordblks / 2**20, 1),  # freed, kept by glibc
        "glibc_mmap_mib": round(heap.hblkhd / 2**20, 1),
        "arrow_pool": pool.backend_name,
        "arrow_mib": round(pool.bytes_allocated() / 2**20, 1),
        "arrow_max_mib": round(pool.max_memory() / 2**20, 1),
        "py_objects": len(gc.get_objects()),
        "threads": len(os.listdir("/proc/self/task")),
        "thread_names": dict(Counter(_comm(t) for t in os.listdir("/proc/self/task"))),
        "groups_in_memory": len(profile_cache._MEMORY),
        "metric_samples": samples,
    }


def write_setup(work: Path, baseline_stats: Path, workers: int) -> Path:
    """The baseline as ``modeltap baseline`` writes it and a monitor.toml of file:// stores."""
    import orjson

    from analyzer.baseline import write_baseline
    from analyzer.statistics import profile_from_statistics

    prof = profile_from_statistics(orjson.loads(baseline_stats.read_bytes()))
    write_baseline(prof, str(work / "baseline"))
    toml = work / "monitor.toml"
    toml.write_text(
        f'[monitor]\ncaptures = "file://{work}/captures"\nreports = "file://{work}/reports"\n'
        f"window_minutes = 60\nend_offset_minutes = 0\nworkers = {workers}\n\n"
        f'[[endpoints]]\nname = "ep"\nvariant = "v"\nbaseline = "file://{work}/baseline"\n'
    )
    return toml


async def daemon(args: argparse.Namespace, source: Path, toml: Path) -> list[dict[str, Any]]:
    """``run_all`` on consecutive windows in this one event loop, as ``run_forever`` does."""
    import orjson
    from prometheus_client import CollectorRegistry

    from analyzer import heap
    from analyzer.checks import evaluate_checks
    from analyzer.config import load_config
    from analyzer.engine import open_engine
    from analyzer.exporter import AnalyzerCollector
    from analyzer.monitor import load_targets, run_all
    from analyzer.window import Window

    compiled = analyzer_tree.check()
    made = [] if args.before else heap.settle()  # as run_forever does
    cfg = load_config(toml, environ={})
    targets = await load_targets(cfg)
    collector = AnalyzerCollector(CollectorRegistry())
    engine = open_engine("local", workers=cfg.monitor.workers)
    manifest = orjson.loads((source / "manifest.json").read_bytes())
    store_dir = toml.parent / "captures"
    rows: list[dict[str, Any]] = []
    linked = 0
    snap: Any = None
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)
    try:
        for i in range(args.runs):
            end_s = (60 + i * args.interval) * 60
            while linked < len(manifest) and manifest[linked]["sealed"] < end_s:
                m = manifest[linked]
                dest = store_dir / m["key"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(source / "segments" / m["name"], dest)
                linked += 1
            end = T0 + dt.timedelta(seconds=end_s)
            c0 = time.process_time()
            [result] = await run_all(
                cfg, targets, Window(end - dt.timedelta(minutes=60), end), collector,
                evaluate_checks, engine,
            )  # fmt: skip
            if not args.before:  # as serve does after each run
                await asyncio.to_thread(heap.release)
            row: dict[str, Any] = {"run": i + 1, "status": result.status, "rows": result.rows,
                                   "objects": result.read.objects,
                                   "cpu_s": round(time.process_time() - c0, 2), "compiled": compiled,
                                   **sample(collector)}  # fmt: skip
            if args.trim:
                _LIBC.malloc_trim(0)
                row["rss_after_trim_mib"] = round(_status("VmRSS"), 1)
            row["heap_settings"] = made
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
            if args.tracemalloc and i == 1:
                import tracemalloc

                snap = tracemalloc.take_snapshot()
                types = _types()
    finally:
        engine.close()
    _LIBC.malloc_trim(0)
    rows[-1]["rss_final_trim_mib"] = round(_status("VmRSS"), 1)
    if snap is not None:
        import tracemalloc

        growth = tracemalloc.take_snapshot().compare_to(snap, "traceback")
        print("tracemalloc growth, run 2 -> last run (top 12 by size):")
        for stat in growth[:12]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+6d} blocks  "
                  f"{stat.traceback.format()[-2].strip() if stat.traceback else ''}")  # fmt: skip
        diff = _types() - types
        print("object types grown, run 2 -> last run:", diff.most_common(10))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--rate", type=int, default=300, help="records a second")
    p.add_argument("--interval", type=int, default=5, help="minutes the window slides a run")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--workers", type=int, default=1, help="[monitor] workers (1: all in-process)")
    p.add_argument("--baseline-rows", type=int, default=100_000)
    p.add_argument("--trim", action="store_true", help="malloc_trim(0) after each run")
    p.add_argument(
        "--before",
        action="store_true",
        help="without analyzer.heap's settings and release (the daemon before them)",
    )
    p.add_argument("--tracemalloc", action="store_true", help="Python allocations by line")
    analyzer_tree.add_flags(p)
    args = p.parse_args()
    analyzer_tree.choose(args)
    minutes = 60 + (args.runs - 1) * args.interval
    source = Path(subprocess.run(
        [sys.executable, str(HERE / "steady.py"), "_gen", args.format, str(args.rate), str(minutes)],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout.strip().splitlines()[-1])  # fmt: skip
    baseline = Path(subprocess.run(
        [sys.executable, str(HERE / "run.py"), "_gen", "baseline", str(args.baseline_rows)],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout.strip().splitlines()[-1])  # fmt: skip
    if analyzer_tree.TREE_ENV in os.environ:  # this process runs the chosen tree itself
        sys.path.insert(0, os.environ[analyzer_tree.TREE_ENV])
    work = source / "daemon"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        toml = write_setup(work, baseline, args.workers)
        rows = asyncio.run(daemon(args, source, toml))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    env = {k: os.environ.get(k, "") for k in os.environ if k.startswith(("MALLOC_", "ARROW_"))}
    print(f"{env}; rate {args.rate}/s, {args.runs} runs, workers {args.workers}, "
          f"analyzer.heap: {'off (--before)' if args.before else rows[0]['heap_settings']}")  # fmt: skip
    print("RSS MiB after each run:", " ".join(f"{r['rss_mib']:.0f}" for r in rows))
    if args.trim:
        print("after malloc_trim(0):  ", " ".join(f"{r['rss_after_trim_mib']:.0f}" for r in rows))
    print(f"after the last run and malloc_trim(0): {rows[-1]['rss_final_trim_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
