"""Streaming benchmark: event streams direct vs through the sidecar at 0 % and 100 % capture.

The origin (origin.py) answers every request with ``--chunks`` chunks of ``--chunk-bytes`` bytes,
``--gap-ms`` apart (an LLM streaming tokens); the client (client.py) holds 1, 16 and 64 streams
at once and times each: time to first body byte and the gaps between chunks. The table gives the
time the sidecar adds to the first byte (p50) and to the inter-chunk gap (p99), and the sidecar's
CPU (all threads: event loop and spool writer) per stream and per chunk. Records the table in
bench/RESULTS.md (section ``## bench/stream``). See bench/stream/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parents[1]), str(BENCH_DIR.parent / "proxy")]

import client  # noqa: E402
import procs  # noqa: E402
import servers  # noqa: E402
import uvloop  # noqa: E402

from bench.common import (  # noqa: E402
    REPO,
    add_record_flags,
    cpu_model,
    usable_cores,
    write_section,
)
from bench.common import precise_cpu_seconds as cpu_seconds  # noqa: E402
from harness.procs import Proc, free_port, start_ready  # noqa: E402

SECTION = "## bench/stream"
TARGETS = ("direct", "sidecar 0%", "sidecar 100%")


@dataclass
class Cell:
    ttfb_p50: float  # streams on a kept-alive connection
    first_p50: float  # each connection's first stream
    gap_p50: float
    gap_p99: float
    streams: int
    chunks: int
    failures: int
    cpu: float  # sidecar CPU seconds (all threads); 0 for direct

    @property
    def cpu_per_stream_ms(self) -> float:
        return self.cpu / self.streams * 1000 if self.streams else 0.0

    @property
    def cpu_per_chunk_us(self) -> float:
        return self.cpu / self.chunks * 1e6 if self.chunks else 0.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    url: str, pid: int | None, conns: int, streams_each: int, chunks: int, spread: float
) -> Cell:
    host, port = url.removeprefix("http://").split(":")
    cpu0 = cpu_seconds(pid) if pid else 0.0
    timings = uvloop.run(client.run(host, int(port), "/stream", conns, streams_each, spread))
    cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    return Cell(
        ttfb_p50=statistics.median(timings.ttfb) if timings.ttfb else float("nan"),
        first_p50=statistics.median(timings.ttfb_first) if timings.ttfb_first else float("nan"),
        gap_p50=_quantile(timings.gaps, 0.5),
        gap_p99=_quantile(timings.gaps, 0.99),
        streams=timings.streams,
        chunks=timings.streams * chunks,
        failures=timings.failures,
        cpu=cpu,
    )


def combine(cells: list[Cell]) -> Cell:
    """One cell from its rounds: the median of each latency, the sums of the counts and CPU."""
    return Cell(
        ttfb_p50=statistics.median(c.ttfb_p50 for c in cells),
        first_p50=statistics.median(c.first_p50 for c in cells),
        gap_p50=statistics.median(c.gap_p50 for c in cells),
        gap_p99=statistics.median(c.gap_p99 for c in cells),
        streams=sum(c.streams for c in cells),
        chunks=sum(c.chunks for c in cells),
        failures=sum(c.failures for c in cells),
        cpu=sum(c.cpu for c in cells),
    )


def _settle(pid: int, timeout: float = 30.0) -> None:
    """Wait until the sidecar is quiet (its spool writer has written what the cell captured), by
    its CPU time alone: scraping /metrics to ask would cost it CPU that the cell would be charged."""
    deadline = time.monotonic() + timeout
    time.sleep(0.3)  # spool.flush_interval_seconds (0.2) and the writer's coalescing pause
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last < 0.001:
            return
        last = now


def table(
    grid: dict[tuple[str, int], Cell], conns: list[int], labels: tuple[str, ...] = ("",)
) -> str:
    """The grid as a Markdown table; one row per stream count and sidecar build (``labels``:
    "" for the tree under test, " (baseline)" for ``--baseline``'s)."""
    ms = 1000.0
    rows = [
        "| streams | TTFB p50 direct | added 0% | added 100% | new connection: direct | added 0% "
        "| added 100% | gap p99 direct | added 0% | added 100% | CPU/stream 0% | CPU/stream 100% "
        "| CPU/chunk 0% | CPU/chunk 100% | streams run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c, label in ((c, label) for c in conns for label in labels):
        d = grid["direct", c]
        z, f = grid[f"sidecar 0%{label}", c], grid[f"sidecar 100%{label}", c]
        rows.append(
            f"| {c}{label} | {d.ttfb_p50 * ms:.2f} ms | {(z.ttfb_p50 - d.ttfb_p50) * ms:+.3f} ms "
            f"| {(f.ttfb_p50 - d.ttfb_p50) * ms:+.3f} ms | {d.first_p50 * ms:.2f} ms "
            f"| {(z.first_p50 - d.first_p50) * ms:+.3f} ms "
            f"| {(f.first_p50 - d.first_p50) * ms:+.3f} ms | {d.gap_p99 * ms:.2f} ms "
            f"| {(z.gap_p99 - d.gap_p99) * ms:+.3f} ms | {(f.gap_p99 - d.gap_p99) * ms:+.3f} ms "
            f"| {z.cpu_per_stream_ms:.1f} ms | {f.cpu_per_stream_ms:.1f} ms "
            f"| {z.cpu_per_chunk_us:.1f} us | {f.cpu_per_chunk_us:.1f} us "
            f"| {d.streams}/{z.streams}/{f.streams}"
            + (
                f" ({d.failures + z.failures + f.failures} failed)"
                if d.failures + z.failures + f.failures
                else ""
            )
            + " |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connections", default="1,16,64", help="concurrent streams per cell")
    p.add_argument("--chunks", type=int, default=200, help="chunks per stream")
    p.add_argument("--chunk-bytes", type=int, default=20, help="bytes per chunk")
    p.add_argument("--gap-ms", type=float, default=10.0, help="milliseconds between chunks")
    p.add_argument(
        "--streams",
        type=int,
        default=2,
        help="streams each connection reads per cell (at least 2: the first is timed apart)",
    )
    p.add_argument(
        "--repeat", type=int, default=2, help="rounds over the grid; latencies are their medians"
    )
    p.add_argument("--compiled", action="store_true", help="run the sidecar from build/compiled")
    p.add_argument(
        "--baseline",
        type=Path,
        help="also run the sidecar from this tree (e.g. main's build/compiled), interleaved",
    )
    add_record_flags(p)
    args = p.parse_args(argv)
    if args.streams < 2:
        print(
            "bench/stream: --streams must be at least 2 (a connection's first stream is timed "
            "apart from its kept-alive ones)",
            file=sys.stderr,
        )
        return 2
    conns = [int(c) for c in args.connections.split(",")]
    tree = REPO / "build" / "compiled" if args.compiled else REPO
    if args.compiled and not (tree / "sidecar").is_dir():
        print("bench/stream: build/compiled is missing: run `make compiled` first", file=sys.stderr)
        return 2
    pin = procs.Pinning(None, None)  # a shared machine: no pinning
    started = time.monotonic()
    load_start = os.getloadavg()
    grid: dict[tuple[str, int], Cell] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        work = Path(tmp)
        port = free_port()
        origin = start_ready(
            "origin",
            [sys.executable, str(BENCH_DIR / "origin.py"), str(port), str(args.chunks),
             str(args.chunk_bytes), str(args.gap_ms / 1000)],
            work, f"http://127.0.0.1:{port}/ping", cwd=REPO,
        )  # fmt: skip
        running: list[Proc] = [origin]
        try:
            upstream = f"http://127.0.0.1:{port}"
            targets: list[tuple[str, str, int | None, str | None]] = [
                ("direct", upstream, None, None)
            ]
            trees = [(tree, "")] + ([(args.baseline, " (baseline)")] if args.baseline else [])
            for root, label in trees:
                for percent in (0.0, 100.0):
                    proc, target, _store = servers.start_sidecar(
                        work, upstream, percent, pin, root, label.strip(" ()")
                    )
                    running.append(proc)
                    targets.append(
                        (
                            f"sidecar {percent:g}%{label}",
                            target.base_url,
                            proc.pid,
                            target.admin_url,
                        )
                    )
            rounds: dict[tuple[str, int], list[Cell]] = {}
            for c, (name, url, pid, admin) in (
                (c, t) for _ in range(args.repeat) for c in conns for t in targets
            ):
                # c=1 reads a few more streams, so its percentiles rest on some samples.
                each = args.streams * 3 if c == 1 else args.streams
                spread = args.chunks * args.gap_ms / 1000 / 2
                cell = measure(url, pid, c, each, args.chunks, spread)
                if pid is not None and admin is not None:
                    cpu0 = cpu_seconds(pid)
                    _settle(pid)
                    cell.cpu += cpu_seconds(pid) - cpu0
                rounds.setdefault((name, c), []).append(cell)
                print(
                    f"{name:>13} c={c:<3} streams={cell.streams:<4} ttfb p50 "
                    f"{cell.ttfb_p50 * 1000:.3f} ms (first on a connection "
                    f"{cell.first_p50 * 1000:.3f}), gap p50/p99 {cell.gap_p50 * 1000:.2f}/"
                    f"{cell.gap_p99 * 1000:.2f} ms, cpu {cell.cpu:.2f} s",
                    flush=True,
                )
            grid = {key: combine(cells) for key, cells in rounds.items()}
        finally:
            for proc in reversed(running):
                proc.stop()
    text = table(grid, conns, ("", " (baseline)") if args.baseline else ("",))
    print()
    print(text)
    elapsed = time.monotonic() - started
    command = ".venv/bin/python bench/stream/run.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    body = "\n".join(
        [
            SECTION,
            "",
            f"Recorded {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command.strip()}` "
            f"({elapsed:.0f} s; {args.repeat} round(s), targets interleaved, each latency the "
            f"median of its rounds). Streams of {args.chunks} chunks of {args.chunk_bytes} bytes, "
            f"{args.gap_ms:g} ms apart (text/event-stream, chunked), the connections' first "
            "streams starting spread over half a stream's length; the sidecar "
            f"{'compiled (build/compiled)' if args.compiled else 'pure Python (the checkout)'}; "
            f"CPU `{cpu_model()}`, {usable_cores()} CPUs shared with "
            f"other work, no pinning (load average {load_start[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end, this run included); "
            f"Python {platform.python_version()}.",
            "",
            (
                f"Rows marked (baseline): the sidecar run from `{args.baseline}` in the same run, "
                "its targets interleaved with the others. "
                if args.baseline
                else ""
            )
            + "Added = sidecar minus direct in the same run (negative: within the noise). TTFB: "
            "request written to the first body byte, on a kept-alive connection (every stream but "
            "each connection's first); new connection: each connection's first stream, whose "
            "request is written as its connect returns (through the sidecar that includes the "
            "sidecar accepting it and, with no idle pooled connection, connecting to the origin). "
            "Gap: time between successive reads of a "
            "stream's body by the client. CPU: the sidecar process (event loop and spool writer, "
            "until its queue is written) over the streams and chunks of the cell.",
            "",
            text,
            "",
        ]
    )
    if not args.no_record:
        write_section(args.results, SECTION, body)
        print(f"\nrecorded in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
