"""bench/scale: one monitoring window in SeaweedFS, profiled in-process, on a local process pool
and on a Dask LocalCluster; records/s, peak RSS per process, and a paper estimate for 100 workers.

The window is N captured records (default 10,000,000) in 1,000 objects under
``s3://scale/captures/ep/v/2026/03/01/10/``, in SageMaker's capture format with the CSV
``endpointInput`` of bench/monitor (the 25 columns of bench/profile/gen_data.py,
seed 1); the baseline is bench/monitor's (100,000 reference rows, seed 0). SeaweedFS is
``weed mini`` on 127.0.0.1 (harness/seaweed.py, auth on), started and stopped here.

Each configuration runs in its own child process, which times ``analyzer.job.run_window`` over
the S3 window (list, every object read by whoever profiles it, parse, profile, merge, checks):

* ``local x1``: ``--engine local --workers 1``, today's in-process path (a thread per object).
* ``local x2``: a ``ProcessEngine`` of 2 spawned processes (``--engine local --workers 2``).
* ``dask x2``: a ``DaskEngine`` on a ``LocalCluster`` of 2 single-threaded worker processes
  (cluster start-up reported apart, not in the run time).

Peak RSS: the child's own ``ru_maxrss``; pool workers' from ``RUSAGE_CHILDREN`` after the pool
is joined (the largest one); Dask workers' from ``client.run`` of each worker's ``ru_maxrss``.

    .venv/bin/python bench/scale/run.py --records 10000000     # the issue's window
    .venv/bin/python bench/scale/run.py --records 200000       # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUCKET = "scale"
CONFIGS = (("local", 1), ("local", 2), ("dask", 2))
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import run_child  # noqa: E402


def _s3_env(endpoint: str) -> dict[str, str]:
    from harness.seaweed import ADMIN, REGION

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELTAP_"))}
    env.update(
        AWS_ACCESS_KEY_ID=ADMIN.access_key,
        AWS_SECRET_ACCESS_KEY=ADMIN.secret_key,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


# --------------------------------------------------------------------------- child: generate


def child_generate(endpoint: str, records: int, objects: int) -> None:
    """Write the window's objects to the bucket (4 uploads at a time); print bytes and seconds."""
    import numpy as np

    from bench.monitor.run import _capture_lines
    from bench.profile.gen_data import CARDINALITIES, _categories
    from harness.seaweed import s3_client

    client = s3_client(endpoint, timeout=60.0)
    rng = np.random.default_rng(1)
    cats = [_categories(c) for c in CARDINALITIES]
    per = [records // objects + (1 if i < records % objects else 0) for i in range(objects)]
    t0 = time.perf_counter()
    total = 0
    made = 0

    def put(i: int, body: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=f"captures/ep/v/2026/03/01/10/{i:05d}-x.jsonl",
                          Body=body)  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        pending = []
        for i, n in enumerate(per):
            body = b"\n".join(_capture_lines("csv", rng, n, cats, made, records)) + b"\n"
            made += n
            total += len(body)
            pending.append(pool.submit(put, i, body))
            if len(pending) >= 8:
                pending.pop(0).result()
            if i % 100 == 99:
                print(f"  {i + 1} objects, {made:,} records, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr)  # fmt: skip
        for f in pending:
            f.result()
    client.close()
    print(json.dumps({"bytes": total, "seconds": time.perf_counter() - t0}))


# --------------------------------------------------------------------------- child: one run


def child_run(engine_name: str, workers: int, endpoint: str, baseline_path: str) -> None:
    import resource

    import orjson

    from analyzer import suggest_constraints
    from analyzer.engine import DaskEngine, open_engine
    from analyzer.job import run_window
    from analyzer.statistics import profile_from_statistics
    from analyzer.targets import Target
    from analyzer.window import Window
    from harness.seaweed import REGION
    from modeltap.core.store import open_store
    from sidecar.config import StoreConfig

    baseline = profile_from_statistics(orjson.loads(Path(baseline_path).read_bytes()))
    target = Target("ep", "v", baseline, suggest_constraints(baseline))
    config = StoreConfig(region=REGION, endpoint_url=endpoint, path_style=True)
    t0 = time.perf_counter()
    engine = open_engine(engine_name, workers=workers)
    start_s = time.perf_counter() - t0

    async def run() -> Any:
        captures = open_store(f"s3://{BUCKET}/captures", config)
        try:
            return await run_window(
                captures, None, target, Window(T0, T0 + dt.timedelta(hours=1)),
                engine=engine, store_config=config,
            )  # fmt: skip
        finally:
            await captures.close()

    try:
        t0 = time.perf_counter()
        result = asyncio.run(run())
        run_s = time.perf_counter() - t0
        if isinstance(engine, DaskEngine):
            peaks = engine.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            worker_rss = [v / 1024 for v in peaks.values()]
        else:
            worker_rss = []
    finally:
        engine.close()
    if not worker_rss and engine_name == "local" and workers > 1:
        worker_rss = [resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]
    print(json.dumps({
        "start_s": start_s, "run_s": run_s, "rows": result.rows, "status": result.status,
        "objects": result.read.objects, "error": result.error, "worker_rss_mib": worker_rss,
        "main_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


# --------------------------------------------------------------------------- parent


def table(records: int, objects: int, runs: list[dict[str, Any]]) -> str:
    lines = [
        "| engine | worker processes | run_window s | records/s | records/s per worker "
        "| engine start s | peak RSS main MiB | peak RSS per worker MiB | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        rate = records / r["run_s"]
        workers = ", ".join(f"{v:,.0f}" for v in r["worker_rss_mib"]) or "-"
        lines.append(
            f"| {r['engine']} | {r['workers']} | {r['run_s']:.1f} | {rate:,.0f} "
            f"| {rate / r['workers']:,.0f} | {r['start_s']:.1f} | {r['main_rss_mib']:,.0f} "
            f"| {workers} | {r['status']}, {r['rows']:,} rows of {objects:,} objects |"
        )
    return "\n".join(lines)


def paper(records: int, total_bytes: int, runs: list[dict[str, Any]], n: int = 100) -> str:
    """What ``n`` workers would do at the measured per-worker rate, and the bandwidth it needs."""
    per_record = total_bytes / records
    out = [f"Objects average {per_record:,.0f} bytes a record ({total_bytes / 1e9:.2f} GB)."]
    for r in runs:
        if r["engine"] != "dask":
            continue
        rate = records / r["run_s"] / r["workers"]
        agg = rate * n
        out.append(
            f"{n} Dask workers at the measured {rate:,.0f} records/s each: {agg:,.0f} records/s, "
            f"a {records:,}-record window in {records / agg:,.1f} s, reading "
            f"{agg * per_record / 1e9:,.2f} GB/s from the store."
        )
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_gen":
        child_generate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        child_run(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=10_000_000)
    p.add_argument("--objects", type=int, default=1_000)
    p.add_argument("--baseline-rows", type=int, default=100_000)
    p.add_argument("--json", type=Path, help="append the results as JSON lines here")
    args = p.parse_args()

    from bench.monitor.run import generate_in_child
    from harness.seaweed import SeaweedS3

    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    baseline = generate_in_child("baseline", str(args.baseline_rows))
    data = Path(tempfile.mkdtemp(prefix="modeltap-scale-"))
    server = SeaweedS3(data)
    server.start()
    try:
        server.create_bucket(BUCKET)
        env = _s3_env(server.endpoint_url)
        _, _, gen = run_child(
            [sys.executable, __file__, "_gen", server.endpoint_url, str(args.records),
             str(args.objects)], env, cwd=REPO,
        )  # fmt: skip
        print(f"generated {args.records:,} records, {gen['bytes'] / 1e9:.2f} GB in "
              f"{gen['seconds']:.0f} s", file=sys.stderr)  # fmt: skip
        runs = []
        for engine, workers in CONFIGS:
            cmd = [sys.executable, __file__, "_run", engine, str(workers), server.endpoint_url,
                   baseline]  # fmt: skip
            wall, _, info = run_child(cmd, env, cwd=REPO)
            r = {"engine": engine, "workers": workers, "records": args.records,
                 "objects": args.objects, "bytes": gen["bytes"], "wall_s": wall, **info}  # fmt: skip
            print(f"{engine} x{workers}: {info['run_s']:.1f} s, "
                  f"{args.records / info['run_s']:,.0f} records/s, {info['status']}, "
                  f"main {info['main_rss_mib']:.0f} MiB, workers {info['worker_rss_mib']}",
                  file=sys.stderr)  # fmt: skip
            if info["rows"] != args.records:
                raise SystemExit(f"expected {args.records} rows: {info}")
            runs.append(r)
    finally:
        server.stop()
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    if args.json:
        with args.json.open("a") as fh:
            for r in runs:
                fh.write(json.dumps(r) + "\n")
    print(table(args.records, args.objects, runs))
    print()
    print(paper(args.records, gen["bytes"], runs))


if __name__ == "__main__":
    main()
