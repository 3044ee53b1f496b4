"""bench/monitor: monitoring-window throughput, and drift decisions side by side with peers.

Part 1 (``monitor``): a window of N captured records (SageMaker capture format, one record per
line, CSV ``endpointInput`` of the 25 columns of bench/profile/gen_data.py;
JSON ``{"instances": [[...]]}`` as a second format) written to a ``LocalStore`` as 10 and as
1,000 objects (``ep/v/2026/03/01/10/{i:05d}-x.jsonl``). The baseline is ``analyzer.profile`` of
reference data from the same generator (another seed). Each configuration runs in its own child
process that loads the baseline and times ``analyzer.job.run_window`` (parse, profile against the
baseline, every check and the drift tests); generation is not measured.

Part 2 (``drift``): the drift scenario (harness/drift_scenario.py, docs/drift.md §5: reference seed
1, current seed 2 with drift in 6 of 25 features) as two Parquet files per size; each tool in its
own child process, whole-process wall time (reading Parquet included) and peak RSS: modeltap
(``analyzer.profile`` of both sides from ``DataSource`` + ``analyzer.checks.evaluate``), exact
scipy tests on raw data (KS / chi-square homogeneity, Bonferroni over 25 features), whylogs drift
scores and Evidently's DataDriftPreset (both from bench/.venv-peers).

Peak RSS is ``os.wait4``'s ``ru_maxrss`` of that child alone.

    .venv/bin/python bench/monitor/run.py monitor --records 1000000
    .venv/bin/python bench/monitor/run.py monitor --records 20000          # smoke
    .venv/bin/python bench/monitor/run.py monitor --compiled   # the build of `make compiled`
    .venv/bin/python bench/monitor/run.py monitor --tree ../before  # another checkout's analyzer
    .venv/bin/python bench/monitor/run.py drift --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT = REPO / "bench" / "out" / "monitor"
PEERS = REPO / "bench" / ".venv-peers" / "bin" / "python"
ALPHA = 0.05
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import run_child  # noqa: E402
from bench.monitor import analyzer_tree  # noqa: E402  (before any analyzer import)

# --------------------------------------------------------------------------- child processes


def generate_in_child(kind: str, *params: str) -> str:
    """Generate (or find cached) input data in a separate process; return its path(s).

    The parent must stay small: with ``vfork``/``posix_spawn`` (CPython's ``subprocess``) Linux
    records the memory image replaced at ``exec`` in the child's ``ru_maxrss``, so a parent that
    had built a 1M-record window in memory would show its own peak as every child's peak.
    """
    cmd = [sys.executable, __file__, "_gen", kind, *params]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def child_monitor(store_dir: str, baseline_path: str, records: int) -> None:
    import orjson

    import analyzer
    from analyzer import suggest_constraints
    from analyzer.job import run_window
    from analyzer.statistics import profile_from_statistics
    from analyzer.targets import Target
    from analyzer.window import Window
    from modeltap.core.store.local import LocalStore

    compiled = analyzer_tree.check()
    baseline = profile_from_statistics(orjson.loads(Path(baseline_path).read_bytes()))
    target = Target("ep", "v", baseline, suggest_constraints(baseline))
    window = Window(T0, T0 + dt.timedelta(hours=1))

    async def timed() -> tuple[Any, float, float]:
        # Timed inside the event loop: asyncio.run's exit formats the repr of the finished task
        # (its result: ~0.1 s of CPU for this window's RunResult), the bench's cost, not the
        # analyzer's (`modeltap monitor` returns a status, not the result).
        t0, c0 = time.perf_counter(), time.process_time()
        found = await run_window(LocalStore(store_dir), None, target, window)
        return found, time.perf_counter() - t0, time.process_time() - c0

    result, run_s, cpu_s = asyncio.run(timed())
    data = result.sections["data"]  # analyzer.data_quality.result.DataResult
    feats = data.evaluation.features if data.evaluation is not None else {}
    drifted = sorted(n for n, f in feats.items() if f.drift)
    print(
        json.dumps(
            {
                "run_s": run_s,
                "cpu_s": cpu_s,
                "status": result.status,
                "rows": result.rows,
                "objects": result.read.objects,
                "unparsed": result.parse.failed,
                "violations": sorted(
                    f"{v.feature_name}:{v.constraint_check_type}" for v in data.violations
                ),
                "drifted": drifted,
                "error": result.error,
                "compiled": compiled,
                "analyzer": str(Path(analyzer.__file__).parent),
            }
        )
    )
    if result.rows != records:
        raise SystemExit(f"expected {records} rows, got {result.rows} ({result.status})")


def child_drift_modeltap(ref: str, cur: str) -> None:
    from analyzer import DataSource, profile, suggest_constraints
    from analyzer.checks import evaluate

    t0 = time.perf_counter()
    base = profile(DataSource([ref]))
    win = profile(DataSource([cur]), baseline=base)
    t1 = time.perf_counter()
    ev = evaluate(base, suggest_constraints(base), win, alpha=ALPHA)
    t2 = time.perf_counter()
    drifted = sorted(n for n, f in ev.features.items() if f.drift)
    distance = sorted(
        v.feature_name for v in ev.violations if v.constraint_check_type == "baseline_drift_check"
    )
    print(
        json.dumps(
            {
                "drifted": drifted,
                "distance_check": distance,
                "read_s": 0.0,
                "compute_s": t2 - t0,
                "profile_s": t1 - t0,
                "evaluate_s": t2 - t1,
            }
        )
    )


def child_drift_scipy(ref: str, cur: str) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from scipy import stats

    t0 = time.perf_counter()
    a, b = pq.read_table(ref), pq.read_table(cur)
    t1 = time.perf_counter()
    pvalues: dict[str, float] = {}
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        if pa.types.is_integer(x.type) or pa.types.is_floating(x.type):
            xs = x.drop_null().to_numpy().astype(np.float64)
            ys = y.drop_null().to_numpy().astype(np.float64)
            xs, ys = xs[~np.isnan(xs)], ys[~np.isnan(ys)]
            pvalues[name] = float(stats.ks_2samp(xs, ys).pvalue)
        else:
            cx = pc.value_counts(x.drop_null()).to_pylist()
            cy = pc.value_counts(y.drop_null()).to_pylist()
            dx = {d["values"]: d["counts"] for d in cx}
            dy = {d["values"]: d["counts"] for d in cy}
            keys = sorted(set(dx) | set(dy))
            table = np.array([[dx.get(k, 0) for k in keys], [dy.get(k, 0) for k in keys]])
            pvalues[name] = float(stats.chi2_contingency(table)[1])
    t2 = time.perf_counter()
    cut = ALPHA / len(pvalues)
    drifted = sorted(n for n, p in pvalues.items() if p < cut)
    print(json.dumps({"drifted": drifted, "read_s": t1 - t0, "compute_s": t2 - t1}))


# --------------------------------------------------------------------------- part 1: monitoring


def _capture_lines(fmt: str, rng: Any, n: int, cats: Any, start: int, total: int) -> list[bytes]:
    import io

    import orjson
    import pyarrow.csv as pacsv

    from bench.profile.gen_data import make_group

    table = make_group(rng, n, cats)
    times = [(T0 + dt.timedelta(seconds=(start + i) * 3600 // total)) for i in range(n)]
    stamps = [t.strftime("%Y-%m-%dT%H:%M:%SZ").encode() for t in times]
    if fmt == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        rows = buf.getvalue().rstrip(b"\n").split(b"\n")
        head = (
            b'{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
            b'"data":"'
        )
        mid = (
            b'","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv;charset=utf-8",'
            b'"mode":"OUTPUT","data":"0.5","encoding":"CSV"}},"eventMetadata":{"eventId":"e'
        )
        return [
            head + row + mid + str(start + i).encode() + b'","inferenceTime":"' + stamps[i]
            + b'"},"eventVersion":"0"}'
            for i, row in enumerate(rows)
        ]  # fmt: skip
    columns = [table.column(c).to_pylist() for c in table.column_names]
    out = []
    for i, row in enumerate(zip(*columns, strict=True)):
        rec = {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "application/json",
                    "mode": "INPUT",
                    "data": orjson.dumps({"instances": [list(row)]}).decode(),
                    "encoding": "JSON",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": '{"predictions": [0.5]}',
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": f"e{start + i}", "inferenceTime": stamps[i].decode()},
            "eventVersion": "0",
        }
        out.append(orjson.dumps(rec))
    return out


def make_captures(fmt: str, records: int, objects: int) -> Path:
    """Write the window's capture objects (cached under bench/out/monitor)."""
    import numpy as np

    from bench.profile.gen_data import CARDINALITIES, _categories
    from modeltap.core.store.local import LocalStore

    root = OUT / f"captures_{fmt}_{records}_{objects}"
    done = root / ".complete"
    if done.exists():
        return root
    print(f"generating {records:,} {fmt} records in {objects} objects -> {root}", file=sys.stderr)
    rng = np.random.default_rng(1)
    cats = [_categories(c) for c in CARDINALITIES]
    store = LocalStore(root)
    per = [records // objects + (1 if i < records % objects else 0) for i in range(objects)]
    pending: list[bytes] = []
    made = 0
    obj = 0

    async def put(i: int, lines: list[bytes]) -> None:
        await store.put(
            f"ep/v/2026/03/01/10/{i:05d}-x.jsonl",
            b"\n".join(lines) + b"\n",
            content_type="application/jsonlines",
        )

    while obj < objects:
        while len(pending) < per[obj]:
            n = min(250_000, records - made)
            pending.extend(_capture_lines(fmt, rng, n, cats, made, records))
            made += n
        asyncio.run(put(obj, pending[: per[obj]]))
        pending = pending[per[obj] :]
        obj += 1
    done.write_text("ok\n")
    return root


def make_baseline(rows: int) -> Path:
    import numpy as np
    import orjson

    from analyzer import profile
    from analyzer.statistics import profile_to_statistics
    from bench.profile.gen_data import CARDINALITIES, _categories, make_group

    path = OUT / f"baseline_{rows}.json"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cats = [_categories(c) for c in CARDINALITIES]
    prof = profile(make_group(rng, rows, cats))
    path.write_bytes(orjson.dumps(profile_to_statistics(prof)))
    return path


def bench_monitor(args: argparse.Namespace) -> list[dict[str, Any]]:
    baseline = Path(generate_in_child("baseline", str(args.baseline_rows)))
    results = []
    for fmt in args.formats:
        for objects in args.objects:
            store = Path(generate_in_child("captures", fmt, str(args.records), str(objects)))
            runs = []
            for _ in range(args.repeat):
                cmd = [sys.executable, __file__, "_child", "monitor", str(store), str(baseline),
                       str(args.records)]  # fmt: skip
                wall, rss, info = run_child(cmd)
                r = {"format": fmt, "objects": objects, "records": args.records, "wall_s": wall,
                     "rss_mib": rss, **info}  # fmt: skip
                print(
                    f"monitor {fmt:4s} {objects:5d} objects {args.records:>10,} records  "
                    f"run_window {info['run_s']:7.2f} s ({args.records / info['run_s']:>9,.0f}/s)  "
                    f"CPU {info['cpu_s']:7.2f} s ({args.records / info['cpu_s']:>9,.0f}/s)  "
                    f"process {wall:7.2f} s  {rss:7,.0f} MiB  {info['status']} "
                    f"drift={info['drifted']} violations={len(info['violations'])}",
                    file=sys.stderr,
                )
                runs.append(r)
            results.append(_median(runs, "run_s"))
    return results


def monitor_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| format | objects | records | run_window s | records/s | CPU s | records/CPU s "
        "| process wall s | peak RSS MiB | status | violations / drift decisions |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['format']} | {r['objects']:,} | {r['records']:,} | {r['run_s']:.2f} "
            f"| {r['records'] / r['run_s']:,.0f} | {r['cpu_s']:.2f} | {r['records'] / r['cpu_s']:,.0f} "
            f"| {r['wall_s']:.2f} | {r['rss_mib']:,.0f} "
            f"| {r['status']} | {len(r['violations'])} / {len(r['drifted'])} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- part 2: drift


def drift_files(rows: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.drift_scenario import generate

    ref, cur = OUT / f"drift_{rows}_ref.parquet", OUT / f"drift_{rows}_cur.parquet"
    for path, seed, drift in ((ref, 1, False), (cur, 2, True)):
        if path.exists():
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"generating {rows:,} rows -> {path}", file=sys.stderr)
        cols = generate(rows, seed, drift=drift)
        table = pa.table(
            {k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in cols.items()}
        )
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, row_group_size=250_000)
        tmp.rename(path)
    return ref, cur


def bench_drift(args: argparse.Namespace) -> list[dict[str, Any]]:
    from harness.drift_scenario import DRIFTED

    results = []
    for rows in args.rows:
        ref, cur = map(Path, generate_in_child("drift", str(rows)).split())
        for tool in args.tools:
            if tool in ("modeltap", "scipy"):
                cmd = [sys.executable, __file__, "_child", tool, str(ref), str(cur)]
            else:
                if not PEERS.exists():
                    print(f"{PEERS} missing: skipping {tool}", file=sys.stderr)
                    continue
                cmd = [str(PEERS), str(HERE / "peer_drift.py"), tool, str(ref), str(cur)]
            runs = []
            for _ in range(args.repeat if tool in ("modeltap", "scipy") else args.peer_repeat):
                wall, rss, info = run_child(cmd)
                flagged = set(info["drifted"])
                r = {"tool": tool, "rows": rows, "wall_s": wall, "rss_mib": rss,
                     "found": len(flagged & DRIFTED), "false": len(flagged - DRIFTED),
                     "missed": sorted(DRIFTED - flagged), "false_flags": sorted(flagged - DRIFTED),
                     **info}  # fmt: skip
                print(
                    f"drift {tool:9s} {rows:>10,} rows  {wall:7.2f} s  {rss:7,.0f} MiB  "
                    f"found {r['found']}/6  false {r['false']}/19  missed={r['missed']} "
                    f"false={r['false_flags']}",
                    file=sys.stderr,
                )
                runs.append(r)
            results.append(_median(runs, "wall_s"))
    return results


def drift_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| tool | rows per side | wall s | peak RSS MiB | drifts found of 6 | false flags of 19 "
        "| missed / falsely flagged |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        detail = ", ".join(r["missed"]) or "-"
        detail += " / " + (", ".join(r["false_flags"]) or "-")
        lines.append(
            f"| {r['tool']} | {r['rows']:,} | {r['wall_s']:.2f} | {r['rss_mib']:,.0f} "
            f"| {r['found']} | {r['false']} | {detail} |"
        )
    return "\n".join(lines)


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    mid = dict(sorted(runs, key=lambda r: r[key])[len(runs) // 2])
    mid[key] = statistics.median(r[key] for r in runs)
    if all("cpu_s" in r for r in runs):
        mid["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
    mid["rss_mib"] = max(r["rss_mib"] for r in runs)
    mid["repeats"] = len(runs)
    return mid


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_gen":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "baseline":
            print(make_baseline(int(rest[0])))
        elif kind == "captures":
            print(make_captures(rest[0], int(rest[1]), int(rest[2])))
        else:
            print(" ".join(map(str, drift_files(int(rest[0])))))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "monitor":
            child_monitor(rest[0], rest[1], int(rest[2]))
        elif kind == "modeltap":
            child_drift_modeltap(*rest)
        else:
            child_drift_scipy(*rest)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="part", required=True)
    m = sub.add_parser("monitor", help="run_window throughput over a captured window")
    m.add_argument("--records", type=int, default=1_000_000)
    m.add_argument("--objects", type=int, nargs="+", default=[10, 1000])
    m.add_argument("--formats", nargs="+", choices=["csv", "json"], default=["csv", "json"])
    m.add_argument("--baseline-rows", type=int, default=100_000)
    m.add_argument("--repeat", type=int, default=1)
    analyzer_tree.add_flags(m)
    d = sub.add_parser("drift", help="drift decisions: modeltap, scipy, whylogs, Evidently")
    d.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    d.add_argument(
        "--tools",
        nargs="+",
        choices=["modeltap", "scipy", "whylogs", "evidently"],
        default=["modeltap", "scipy", "whylogs", "evidently"],
    )
    d.add_argument("--repeat", type=int, default=3, help="runs of modeltap and scipy (median)")
    d.add_argument("--peer-repeat", type=int, default=1, help="runs of whylogs and Evidently")
    for sp in (m, d):
        sp.add_argument("--json", type=Path, help="append the results as JSON lines here")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    if args.part == "monitor":
        analyzer_tree.choose(args)
        results = bench_monitor(args)
        table = monitor_table(results)
    else:
        results = bench_drift(args)
        table = drift_table(results)
    if args.json:
        with args.json.open("a") as fh:
            for r in results:
                fh.write(json.dumps(r) + "\n")
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    print(table)


if __name__ == "__main__":
    main()
