"""bench/profile: modeltap's baseline vs whylogs profiling vs Evidently's summary report.

Generates the benchmark dataset (``gen_data.py``) as Parquet at each size, then runs each
tool in its own subprocess on the same file and reports whole-process wall time, rows per second
and peak RSS (``os.wait4``'s ``ru_maxrss`` of that child alone). modeltap runs from the project's
venv (``modeltap baseline`` via ``analyzer.cli.baseline``); whylogs and Evidently from
``bench/.venv-peers`` (numpy<2, pandas<3; see peers-requirements.txt). Each measurement is the
median of ``--repeat`` runs.

    .venv/bin/python bench/profile/run.py                       # 100k and 1M, all tools
    .venv/bin/python bench/profile/run.py --rows 10000000 --only modeltap
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = REPO / "bench" / "out" / "profile"
PEERS = REPO / "bench" / ".venv-peers" / "bin" / "python"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import run_child_output as run_child  # noqa: E402


@dataclass
class Result:
    tool: str
    rows: int
    wall_s: float
    rss_mib: float
    detail: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s


def dataset(rows: int) -> Path:
    path = DATA / f"data_{rows}.parquet"
    if not path.exists():
        print(f"generating {rows:,} rows -> {path}", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(HERE / "gen_data.py"), "--rows", str(rows), "--out", str(path)],
            check=True,
        )
    return path


def measure(tool: str, rows: int, path: Path) -> Result:
    env = dict(os.environ)
    if tool == "modeltap":
        out = Path(tempfile.mkdtemp(prefix="bench-profile-"))
        try:
            cmd = [sys.executable, "-m", "analyzer.cli.baseline", str(path), "-o", str(out), "-q"]
            wall, rss, _ = run_child(cmd, env)
            size = (out / "statistics.json").stat().st_size
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return Result(tool, rows, wall, rss, f"statistics.json {size / 1e6:.1f} MB")
    script = HERE / f"peer_{tool}.py"
    wall, rss, stdout = run_child([str(PEERS), str(script), str(path)], env)
    info = json.loads(stdout.strip().splitlines()[-1])
    return Result(
        tool, rows, wall, rss, f"read {info['read_s']:.1f} s + compute {info['compute_s']:.1f} s"
    )


def median_result(runs: list[Result]) -> Result:
    mid = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
    return Result(
        mid.tool,
        mid.rows,
        statistics.median(r.wall_s for r in runs),
        max(r.rss_mib for r in runs),
        mid.detail,
    )


def table(results: list[Result]) -> str:
    lines = [
        "| tool | rows | wall s | rows/s | peak RSS MiB | detail |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.tool} | {r.rows:,} | {r.wall_s:.2f} | {r.rows_per_s:,.0f} | {r.rss_mib:,.0f} | {r.detail} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--only", nargs="+", choices=["modeltap", "whylogs", "evidently"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", type=Path, help="append the results as JSON lines to this file")
    args = p.parse_args()
    tools = args.only or ["modeltap", "whylogs", "evidently"]
    if not PEERS.exists() and set(tools) - {"modeltap"}:
        print(
            f"{PEERS} missing: install the peers (see bench/profile/README.md); running modeltap only",
            file=sys.stderr,
        )
        tools = ["modeltap"]
    results = []
    for rows in args.rows:
        path = dataset(rows)
        for tool in tools:
            runs = []
            for _ in range(args.repeat):
                r = measure(tool, rows, path)
                print(
                    f"{tool:9s} {rows:>11,} rows  {r.wall_s:7.2f} s  {r.rows_per_s:>12,.0f} rows/s  "
                    f"{r.rss_mib:7,.0f} MiB  {r.detail}",
                    file=sys.stderr,
                )
                runs.append(r)
            results.append(median_result(runs))
            if args.json:
                with args.json.open("a") as fh:
                    fh.write(json.dumps(results[-1].__dict__) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
