"""bench/monitor steady state: consecutive runs of a sliding window, incremental beside full re-read.

Traffic at ``--rate`` records/s (default 1,000: 3.6 M records per 60-minute window) is written as
the sidecar writes it: a segment is sealed at 16 MiB or when its first record is 60 s old
(``spool.max_segment_bytes``, ``spool.max_segment_age_seconds``), under
``ep/v/yyyy/mm/dd/hh/MM-SS-000-<n>.jsonl`` of its first record. Records are bench/monitor's:
SageMaker capture format, CSV (or JSON ``instances``) ``endpointInput`` of the 25 columns of
bench/profile/gen_data.py (seed 1). Generation is not timed and runs in its own process.

Then ``--runs`` windows of ``--window`` minutes, ``--interval`` minutes apart (the first ends
``--window`` minutes after the traffic starts). Before each run the segments sealed by the
window's end appear in the capture store (hard links), as uploads would. Each window is run
twice: **incremental** (``run_window(..., cache=ProfileCache(...))``) in one long-lived process
that keeps the cache across runs, as the monitor's daemon does, and **full re-read**
(``cache=None``, what every run did before) in a process of its own. Per run: CPU seconds
(``time.process_time`` around the awaited ``run_window``, inside the event loop), wall seconds and peak RSS (the daemon's ``VmHWM``
after a reset through ``/proc/self/clear_refs``, which cannot go below what the process already
holds; the full re-read's ``ru_maxrss``). Both must agree on rows, violations and drift
decisions; the bench stops if they do not.

    .venv/bin/python bench/monitor/steady.py                          # 12 runs, 60-min window
    .venv/bin/python bench/monitor/steady.py --rate 100 --runs 4      # smoke
    .venv/bin/python bench/monitor/steady.py --compiled               # the build of `make compiled`
    .venv/bin/python bench/monitor/steady.py --tree ../before         # another checkout's analyzer
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT = REPO / "bench" / "out" / "monitor"
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
SEGMENT_BYTES = 16 * 1024 * 1024
SEGMENT_AGE_S = 60

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import cpu_model, git, load_text, run_child  # noqa: E402
from bench.monitor import analyzer_tree  # noqa: E402  (before any analyzer import)


def generate(fmt: str, rate: int, minutes: int) -> Path:
    """Write the traffic's segments and a manifest (cached under bench/out/monitor)."""
    import numpy as np
    import orjson

    from bench.monitor.run import _capture_lines
    from bench.profile.gen_data import CARDINALITIES, _categories

    root = OUT / f"steady_{fmt}_{rate}_{minutes}"
    if (root / "manifest.json").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    (root / "segments").mkdir(parents=True)
    total = rate * minutes * 60
    print(f"generating {total:,} {fmt} records over {minutes} min -> {root}", file=sys.stderr)
    rng = np.random.default_rng(1)
    cats = [_categories(c) for c in CARDINALITIES]
    manifest: list[dict[str, Any]] = []
    seg: list[bytes] = []
    seg_bytes, seg_first, seg_last = 0, 0, 0

    def seal() -> None:
        first = T0 + dt.timedelta(seconds=seg_first)
        name = f"{len(manifest):06d}.jsonl"
        (root / "segments" / name).write_bytes(b"".join(seg))
        key = f"ep/v/{first:%Y/%m/%d/%H}/{first:%M-%S}-000-{len(manifest):06d}.jsonl"
        manifest.append({"name": name, "key": key, "sealed": seg_last})

    made = 0
    while made < total:
        n = min(250_000, total - made)
        # bench/monitor's records; times re-stamped at ``rate`` records a second
        lines = _capture_lines(fmt, rng, n, cats, made, total)
        for i, ln in enumerate(lines):
            second = (made + i) // rate
            stamp = (T0 + dt.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
            ln = ln[: ln.rindex(b'"inferenceTime":"') + 17] + stamp + b'"},"eventVersion":"0"}'
            if seg and (seg_bytes + len(ln) > SEGMENT_BYTES or second - seg_first >= SEGMENT_AGE_S):
                seal()
                seg, seg_bytes = [], 0
            if not seg:
                seg_first = second
            seg.append(ln + b"\n")
            seg_bytes += len(ln) + 1
            seg_last = second
        made += n
    if seg:
        seal()
    (root / "manifest.json").write_bytes(orjson.dumps(manifest))
    return root


def _peak_reset() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _target(baseline_path: str) -> Any:
    import orjson

    from analyzer import suggest_constraints
    from analyzer.statistics import profile_from_statistics
    from analyzer.targets import Target

    baseline = profile_from_statistics(orjson.loads(Path(baseline_path).read_bytes()))
    return Target("ep", "v", baseline, suggest_constraints(baseline))


def _window(i: int, window_min: int, interval_min: int) -> Any:
    from analyzer.window import Window

    end = T0 + dt.timedelta(minutes=window_min + i * interval_min)
    return Window(end - dt.timedelta(minutes=window_min), end)


def _outcome(r: Any) -> list[Any]:
    data = r.sections.get("data")
    violations = data.violations if data is not None else []
    feats = data.evaluation.features if data is not None and data.evaluation is not None else {}
    return [r.status, r.rows, sorted(v.feature_name + ":" + v.constraint_check_type
            for v in violations),
            sorted(n for n, f in feats.items() if f.drift)]  # fmt: skip


async def _timed(run: Coroutine[Any, Any, Any]) -> tuple[Any, float, float]:
    """``run``'s result, CPU and wall seconds, timed inside the event loop: ``asyncio.run``
    formats the repr of its finished task on the way out (~0.1 s for a window's RunResult), the
    bench's cost, not the analyzer's (the monitor's loop returns a status, not the result)."""
    c0, w0 = time.process_time(), time.perf_counter()
    r = await run
    return r, time.process_time() - c0, time.perf_counter() - w0


def child_incremental(
    work: str, baseline_path: str, window_min: int, interval_min: int, restart: bool = False
) -> None:
    """The monitor's daemon: one process, the cache kept across runs; a run per stdin line.
    ``restart``: forget the cache's in-memory groups before each run, as a CronJob's new process
    would (they are read from the cache store instead)."""
    from analyzer import profile_cache
    from analyzer.job import run_window
    from analyzer.profile_cache import ProfileCache
    from modeltap.core.store.local import LocalStore

    compiled = analyzer_tree.check()
    target = _target(baseline_path)
    captures = LocalStore(Path(work) / "captures")
    cache = ProfileCache(LocalStore(Path(work) / "cache"))
    for i, _ in enumerate(sys.stdin):
        window = _window(i, window_min, interval_min)
        if restart:
            profile_cache._MEMORY.clear()
        _peak_reset()
        r, cpu, wall = asyncio.run(_timed(run_window(captures, None, target, window, cache=cache)))
        used = cache.last
        print(json.dumps({"run": i + 1, "objects": r.read.objects, "rows": r.rows,
                          "inc_cpu_s": cpu, "inc_wall_s": wall, "inc_rss_mib": _peak_mib(),
                          "profiled": used.profiled, "reused": used.reused_objects,
                          "skipped_outside": used.skipped_outside,
                          "groups_read": used.groups_read, "outcome": _outcome(r),
                          "compiled": compiled}),
              flush=True)  # fmt: skip


def child_full(work: str, baseline_path: str, i: int, window_min: int, interval_min: int) -> None:
    """What every run did before: the whole window read, in a process of its own."""
    from analyzer.job import run_window
    from modeltap.core.store.local import LocalStore

    analyzer_tree.check()
    target = _target(baseline_path)
    window = _window(i, window_min, interval_min)
    r, cpu, wall = asyncio.run(_timed(run_window(LocalStore(Path(work) / "captures"), None,
                                                  target, window)))  # fmt: skip
    print(json.dumps({"full_cpu_s": cpu, "full_wall_s": wall, "outcome": _outcome(r)}))


def scenario(source: Path, baseline: str, args: argparse.Namespace) -> tuple[list[Any], float]:
    """Run the windows: segments appear, the daemon runs, a full re-read runs beside it."""
    import subprocess

    import orjson

    manifest = orjson.loads((source / "manifest.json").read_bytes())
    work = source / "run"
    if work.exists():
        shutil.rmtree(work)
    store_dir = work / "captures"
    daemon = subprocess.Popen(
        [sys.executable, __file__, "_inc", str(work), baseline, str(args.window),
         str(args.interval), "restart" if args.restart else ""], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert daemon.stdin is not None and daemon.stdout is not None
    rows, linked = [], 0
    try:
        for i in range(args.runs):
            end_s = (args.window + i * args.interval) * 60
            while linked < len(manifest) and manifest[linked]["sealed"] < end_s:
                m = manifest[linked]
                dest = store_dir / m["key"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(source / "segments" / m["name"], dest)
                linked += 1
            daemon.stdin.write("run\n")
            daemon.stdin.flush()
            row = json.loads(daemon.stdout.readline())
            if args.full_every and (i % args.full_every == 0 or i == args.runs - 1):
                _, rss, full = run_child([sys.executable, __file__, "_full", str(work), baseline,
                                          str(i), str(args.window), str(args.interval)])  # fmt: skip
                if full["outcome"] != row["outcome"]:
                    raise SystemExit(f"run {i + 1}: {row['outcome']} != full {full['outcome']}")
                row.update(full, full_rss_mib=rss)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        daemon.stdin.close()
        _, _, usage = os.wait4(daemon.pid, 0)
        shutil.rmtree(work, ignore_errors=True)
    return rows, usage.ru_maxrss / 1024


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| run | objects | rows | profiled / reused / outside | incremental CPU s | wall s "
        "| peak RSS MiB | full re-read CPU s | wall s | peak RSS MiB | CPU ratio |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        full = "full_cpu_s" in r
        lines.append(
            f"| {r['run']} | {r['objects']:,} | {r['rows']:,} "
            f"| {r['profiled']} / {r['reused']} / {r['skipped_outside']} "
            f"| {r['inc_cpu_s']:.2f} | {r['inc_wall_s']:.2f} | {r['inc_rss_mib']:,.0f} "
            + (
                f"| {r['full_cpu_s']:.2f} | {r['full_wall_s']:.2f} | {r['full_rss_mib']:,.0f} "
                f"| 1/{r['full_cpu_s'] / r['inc_cpu_s']:.1f} |"
                if full
                else "| - | - | - | - |"
            )
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_gen":
        print(generate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_inc":
        a = sys.argv[2:]
        child_incremental(a[0], a[1], int(a[2]), int(a[3]), a[4:5] == ["restart"])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_full":
        a = sys.argv[2:]
        child_full(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--rate", type=int, default=1000, help="records a second")
    p.add_argument("--window", type=int, default=60, help="minutes")
    p.add_argument("--interval", type=int, default=5, help="minutes between runs")
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--full-every", type=int, default=1, help="full re-read every N runs (0: none)")
    p.add_argument("--baseline-rows", type=int, default=100_000)
    p.add_argument(
        "--restart",
        action="store_true",
        help="no in-memory cache between runs (a CronJob: a new process per run)",
    )
    analyzer_tree.add_flags(p)
    args = p.parse_args()
    analyzer_tree.choose(args)
    import subprocess

    minutes = args.window + (args.runs - 1) * args.interval
    source = subprocess.run(
        [sys.executable, __file__, "_gen", args.format, str(args.rate), str(minutes)],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    baseline = subprocess.run(
        [sys.executable, str(HERE / "run.py"), "_gen", "baseline", str(args.baseline_rows)],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    before = os.getloadavg()
    t0 = time.perf_counter()
    rows, rss = scenario(Path(source), baseline, args)
    steady = [r for r in rows[1:] if "full_cpu_s" in r]
    print(f"CPU: {cpu_model()}; commit {git('rev-parse', '--short', 'HEAD')}; "
          f"load {load_text(before)} -> {load_text()}; daemon peak RSS {rss:,.0f} MiB; "
          f"analyzer of {args.tree or 'this checkout'} (C passes {'' if rows[0]['compiled'] else 'not '}"
          "loaded); "
          f"total {time.perf_counter() - t0:.1f} s")  # fmt: skip
    print(
        f"incremental CPU total {sum(r['inc_cpu_s'] for r in rows):.2f} s; "
        f"full re-read CPU total {sum(r.get('full_cpu_s', 0) for r in rows):.2f} s"
    )
    if steady:
        ratio = statistics.median(r["full_cpu_s"] / r["inc_cpu_s"] for r in steady)
        print(f"steady state (runs 2..{len(rows)}): median incremental CPU "
              f"{statistics.median(r['inc_cpu_s'] for r in steady):.2f} s, full re-read "
              f"{statistics.median(r['full_cpu_s'] for r in steady):.2f} s: 1/{ratio:.1f}")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
