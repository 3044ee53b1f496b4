"""The side-by-side table, the verdicts against the targets, and the RESULTS.md section."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DIRECT, NGINX = "direct", "nginx"
SECTION = "## bench/proxy"


def section_heading(cpu: str) -> str:
    """The RESULTS.md section of a recording: one per CPU model, so a run on another kind of
    machine adds its own instead of replacing this one's (ratios differ between CPUs)."""
    return f"{SECTION} ({cpu})"


METHOD = """\
How: wrk (1 thread) POSTs a fixed CSV body (`Content-Type: text/csv`) to `/<size>.csv`. The origin
is nginx (1 worker) serving a CSV file of the same size (`error_page 405 =200 $uri` turns the POST
into the file; the request body is read and discarded). Targets: **direct** = wrk -> origin;
**sidecar N%** = wrk -> sidecar (`--capture.sample-percent N`, other options default: spool fsync
on, uvloop, spool and `file://` store in a temp dir on the root disk) -> origin; **nginx** = wrk ->
nginx (1 worker, `upstream { keepalive 64; }`, `proxy_http_version 1.1`, `Connection ""`,
access_log off, buffers large enough to stay off disk) -> origin; **python floor** = wrk ->
`bench/proxy/floor.py` (the least a Python forwarder on uvloop + httptools does: parse, forward on
a pooled connection, parse, answer; no capture, metrics, limits or timeouts) -> origin, a
yardstick for what Python itself costs. All six run at once; within a cell the targets take turns. *proxy CPU us/req* = change of utime+stime in /proc/<pid>/stat of the
sidecar process (all threads: event loop, spool writer, uploader; read after the capture queue has
drained), of the nginx proxy's worker or of the floor process, divided by the requests wrk completed. *per core* =
nginx CPU/req / sidecar CPU/req, the throughput ratio if both were CPU-bound on one core: the
measured ratio understates nginx when nginx is held back by the load CPU (wrk + origin), which
caps every target (*direct* is that cap). Latencies are wrk's (no coordinated-omission
correction). *captured/req* = records spooled per request. A sidecar's CPU is also split by
thread: *loop thread* = its main thread (the event loop: parsing, forwarding, sampling, handing
records off) per request; *writer* = all its other threads (the spool writer encoding and
writing records, the uploader's file work) per record spooled. *CPU us/req, every record
written* = loop + writer x the sampling rate: what a request would cost if the writer had
written every sampled record, which a saturated sidecar does not (the writer runs at lower
priority, `spool.writer_nice`, and what it cannot take is dropped and counted)."""


@dataclass(frozen=True)
class Sample:
    """One measured run of one cell (body size x concurrency x target)."""

    rps: float
    p50_us: float
    p99_us: float
    requests: int
    errors: int
    cpu_us: float | None  # CPU of the proxy process per request; None for direct
    captured: float | None  # records spooled per request; None when not a sidecar
    dropped: float  # records dropped because the capture queue was full
    loop_us: float | None = None  # a sidecar's main thread (event loop) CPU per request
    capture_us: float | None = None  # a sidecar's other threads' CPU per record spooled


@dataclass(frozen=True)
class Cell:
    """The median of a cell's samples (errors summed)."""

    rps: float
    p50_us: float
    p99_us: float
    errors: int
    cpu_us: float | None
    captured: float | None
    dropped: float
    loop_us: float | None = None
    capture_us: float | None = None
    rounds_rps: tuple[float, ...] = ()  # each round's req/s, in round order

    def full_cpu_us(self, percent: float) -> float | None:
        """CPU per request if every sampled record were written: the loop's share plus the
        writer's cost per record times the sampling rate. Independent of how many records a
        saturated writer dropped (a dropped record costs the writer nothing)."""
        if self.loop_us is None:
            return None
        if self.capture_us is None:
            return self.loop_us if percent == 0 else None
        return self.loop_us + self.capture_us * percent / 100


def percent_of(target: str) -> float | None:
    """The capture percentage in a target's name (``sidecar 10%`` -> 10.0)."""
    m = re.match(r"sidecar (\d+(?:\.\d+)?)%", target)
    return float(m.group(1)) if m else None


Key = tuple[str, int, str]  # (body label, connections, target name)


def _median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def aggregate(samples: Sequence[Sample]) -> Cell:
    return Cell(
        rps=statistics.median(s.rps for s in samples),
        p50_us=statistics.median(s.p50_us for s in samples),
        p99_us=statistics.median(s.p99_us for s in samples),
        errors=sum(s.errors for s in samples),
        cpu_us=_median_or_none([s.cpu_us for s in samples]),
        captured=_median_or_none([s.captured for s in samples]),
        dropped=sum(s.dropped for s in samples),
        loop_us=_median_or_none([s.loop_us for s in samples]),
        capture_us=_median_or_none([s.capture_us for s in samples]),
        rounds_rps=tuple(s.rps for s in samples),
    )


def _round_ratios(a: Cell, b: Cell) -> str:
    """`` (rounds 0.72-0.91)``: the spread of a/b req/s over rounds (targets take turns within a
    round, so a round's two samples ran minutes apart at most). Empty for a single round."""
    if len(a.rounds_rps) < 2 or len(a.rounds_rps) != len(b.rounds_rps):
        return ""
    ratios = [x / y for x, y in zip(a.rounds_rps, b.rounds_rps, strict=True)]
    return f" (rounds {min(ratios):.2f}-{max(ratios):.2f})"


@dataclass(frozen=True)
class Grid:
    cells: dict[Key, Cell]
    labels: list[str]
    connections: list[int]
    targets: list[str]

    def get(self, label: str, conns: int, target: str) -> Cell | None:
        return self.cells.get((label, conns, target))


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _fmt(value: float | None, pattern: str) -> str:
    return pattern.format(value) if value is not None else "-"


def _row_values(grid: Grid, label: str, conns: int) -> dict[str, Callable[[str, Cell], str]]:
    direct = grid.get(label, conns, DIRECT)
    nginx = grid.get(label, conns, NGINX)
    return {
        "req/s": lambda _t, c: f"{c.rps:,.0f}",
        "req/s vs nginx": lambda _t, c: _ratio(c.rps, nginx.rps if nginx else None),
        "req/s vs direct": lambda _t, c: _ratio(c.rps, direct.rps if direct else None),
        "p50 ms": lambda _t, c: f"{c.p50_us / 1000:.3f}",
        "p50 added vs direct, us": lambda _t, c: _fmt(
            c.p50_us - direct.p50_us if direct else None, "{:+.0f}"
        ),
        "p99 ms": lambda _t, c: f"{c.p99_us / 1000:.3f}",
        "proxy CPU us/req": lambda _t, c: _fmt(c.cpu_us, "{:.1f}"),
        "captured/req": lambda _t, c: _fmt(c.captured, "{:.2f}"),
        "loop thread CPU us/req": lambda _t, c: _fmt(c.loop_us, "{:.1f}"),
        "writer CPU us/record": lambda _t, c: _fmt(c.capture_us, "{:.1f}"),
        "CPU us/req, every record written": lambda t, c: _fmt(
            c.full_cpu_us(percent_of(t) or 0.0), "{:.1f}"
        ),
        "errors (socket+non-2xx)": lambda _t, c: str(c.errors),
    }


def table(grid: Grid) -> str:
    """One markdown table: targets side by side, one block of metric rows per size x concurrency."""
    head = ["body", "conns", "metric", *grid.targets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in grid.labels:
        for conns in grid.connections:
            for metric, fmt in _row_values(grid, label, conns).items():
                cells = [grid.get(label, conns, t) for t in grid.targets]
                shown = [
                    fmt(t, c) if c is not None else "-"
                    for t, c in zip(grid.targets, cells, strict=True)
                ]
                lines.append("| " + " | ".join([label, str(conns), metric, *shown]) + " |")
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _busy(cell: Cell) -> str:
    """Share of one core the proxy used: req/s x CPU s/req."""
    return f"{cell.rps * (cell.cpu_us or 0) / 1e6:.0%}"


def _throughput_target(grid: Grid, label: str, sidecar: str) -> list[str]:
    out = []
    for conns in grid.connections:
        sc, ng = grid.get(label, conns, sidecar), grid.get(label, conns, NGINX)
        if sc is None or ng is None or sc.cpu_us is None or ng.cpu_us is None:
            continue
        full = sc.full_cpu_us(100) or sc.cpu_us
        measured, per_core = sc.rps / ng.rps, ng.cpu_us / full
        out.append(
            f"  - {conns} conns: measured {measured:.2f}x nginx's req/s with "
            f"{sc.captured or 0:.2f} records written per request (sidecar core {_busy(sc)} busy, "
            f"nginx core {_busy(ng)}); from CPU per request with every record written "
            f"{per_core:.2f}x ({_met(per_core >= 0.3)}); sidecar {full:.0f} us/req "
            f"({_met(full <= 150)} for <= 150), nginx {ng.cpu_us:.0f} us/req"
        )
    return out


def _latency_target(grid: Grid, label: str, sidecars: Sequence[str]) -> list[str]:
    conns = min(grid.connections)
    direct, ng = grid.get(label, conns, DIRECT), grid.get(label, conns, NGINX)
    if direct is None or ng is None:
        return []
    ng_added = ng.p50_us - direct.p50_us
    out = []
    for name in sidecars:
        sc = grid.get(label, conns, name)
        if sc is None:
            continue
        gap = (sc.p50_us - direct.p50_us) - ng_added
        out.append(
            f"  - {label} {name}: added p50 {sc.p50_us - direct.p50_us:.0f} us vs nginx's "
            f"{ng_added:.0f} us: {gap:+.0f} us ({_met(gap <= 250)})"
        )
    return out


def _capture_cost_target(grid: Grid, label: str, full: str, none: str) -> list[str]:
    out = []
    for conns in grid.connections:
        a, b = grid.get(label, conns, full), grid.get(label, conns, none)
        if a is None or b is None:
            continue
        kept = a.rps / b.rps
        line = (
            f"  - {conns} conns: served {kept:.2f} of the 0% req/s{_round_ratios(a, b)} "
            f"({_met(kept >= 0.8)}), "
            f"{a.captured or 0:.2f} records written per request"
        )
        every = a.full_cpu_us(100)
        if every and b.cpu_us:
            line += (
                f"; with every record written on that core {b.cpu_us / every:.2f} "
                f"({_met(b.cpu_us / every >= 0.8)}): CPU/req {b.cpu_us:.0f} -> {every:.0f} us"
            )
        out.append(line)
    return out


def _written(cell: Cell) -> str:
    """The records-written share of a 100% cell: records spooled per request, and those shed."""
    return (
        f"records written {cell.captured or 0:.2f} per request ({cell.dropped:,.0f} shed, counted)"
    )


def _summary(grid: Grid, small: str, large: str) -> list[str]:
    """One line per target, at the concurrency that decides it, each with the records-written
    share of the 100% sidecar it judges (a saturated sidecar sheds records: a ratio says little
    without it). The aims of issue 23 (capture that costs little) are judged beside the older
    targets."""
    top, low = max(grid.connections), min(grid.connections)
    sc, ng = grid.get(small, top, "sidecar 100%"), grid.get(small, top, NGINX)
    out = ["", "Verdicts:"]
    full = sc.full_cpu_us(100) if sc else None
    if sc and ng and full and ng.cpu_us:
        per_core = ng.cpu_us / full
        out.append(
            f"- {small} 100% throughput vs nginx on one core, every record written: "
            f"{per_core:.2f}x -> {_met(per_core >= 0.3)} (aim >= 0.6x: {_met(per_core >= 0.6)}); "
            f"CPU {full:.0f} us/req -> {_met(full <= 150)}; {_written(sc)}"
        )
    none, floor = grid.get(small, top, "sidecar 0%"), grid.get(small, top, "python floor")
    if none and floor and none.cpu_us and floor.cpu_us:
        ratio = none.cpu_us / floor.cpu_us
        out.append(
            f"- {small} sidecar 0% vs the python floor, CPU per request: {ratio:.2f}x "
            f"(aim <= 1.2x: {_met(ratio <= 1.2)})"
        )
    d, n, s = (grid.get(small, low, t) for t in (DIRECT, NGINX, "sidecar 100%"))
    if d and n and s:
        gap = s.p50_us - n.p50_us
        out.append(f"- added p50, {small} 100% vs nginx: {gap:+.0f} us -> {_met(gap <= 250)}")
    for label in grid.labels:
        a, b = grid.get(label, top, "sidecar 100%"), grid.get(label, top, "sidecar 0%")
        if a and b:
            out.append(
                f"- p99 at {top} connections, {label}: sidecar 100% {a.p99_us / 1000:.2f} ms, "
                f"0% {b.p99_us / 1000:.2f} ms (capture adds {(a.p99_us - b.p99_us) / 1000:+.2f} ms)"
            )
    a, b = grid.get(large, top, "sidecar 100%"), grid.get(large, top, "sidecar 0%")
    if a and b:
        kept = a.rps / b.rps
        out.append(
            f"- {large} 100% vs 0% req/s served: {kept:.2f}{_round_ratios(a, b)} -> "
            f"{_met(kept >= 0.8)}, {_written(a)} (aim >= 0.5: {_met((a.captured or 0) >= 0.5)})"
        )
        every = a.full_cpu_us(100)
        if every and b.cpu_us:
            out.append(
                f"- {large} 100% vs 0%, every record written on one core: "
                f"{b.cpu_us / every:.2f} -> {_met(b.cpu_us / every >= 0.8)} "
                f"(aim >= 0.5: {_met(b.cpu_us / every >= 0.5)})"
            )
        if a.capture_us is not None:
            out.append(
                f"- {large} 100%, writer CPU per record: {a.capture_us:.0f} us "
                f"(aim <= 60: {_met(a.capture_us <= 60)}); {_written(a)}"
            )
    out += _niced(grid, top)
    return out


def _niced(grid: Grid, top: int) -> list[str]:
    """What another spool.writer_nice (--writer-nice) trades at saturation: requests served
    against records written, beside the default's."""
    out = []
    for name in (t for t in grid.targets if t.startswith("sidecar 100% (writer_nice ")):
        for label in grid.labels:
            a, b = grid.get(label, top, name), grid.get(label, top, "sidecar 0%")
            c = grid.get(label, top, "sidecar 100%")
            if a is None or b is None:
                continue
            line = f"- {label} {name}: served {a.rps / b.rps:.2f} of the 0% req/s, {_written(a)}"
            if c is not None:
                line += (
                    f"; default niceness: served {c.rps / b.rps:.2f}, "
                    f"{c.captured or 0:.2f} written per request"
                )
            out.append(line)
    return out


def verdicts(grid: Grid, small: str, large: str) -> str:
    """Each target per concurrency; throughput targets count at the highest concurrency."""
    sidecars = [t for t in grid.targets if t.startswith("sidecar")]
    full, none = "sidecar 100%", "sidecar 0%"
    top = max(grid.connections)
    lines = [
        f"- Target: 100% capture of {small} bodies >= 0.3x nginx's throughput on one core and "
        f"<= 150 us sidecar CPU per request. Judged at {top} connections (saturation) from CPU "
        "per request with every record written (loop + writer), since nginx's measured req/s is "
        "capped by the load CPU, not its own, and a saturated sidecar sheds records:",
        *_throughput_target(grid, small, full),
        f"- Target: added p50 at {min(grid.connections)} connection(s) within 0.25 ms of nginx's "
        f"(the {small} row is the target; {large} for information):",
        *_latency_target(grid, small, sidecars),
        *_latency_target(grid, large, sidecars),
        f"- Target: {large} bodies at 100% capture keep >= 80% of the no-capture throughput "
        f"(judged at {top} connections):",
        *_capture_cost_target(grid, large, full, none),
        *_summary(grid, small, large),
    ]
    return "\n".join(lines)


def footnotes(grid: Grid) -> str:
    notes = []
    for (label, conns, target), cell in sorted(grid.cells.items()):
        if cell.dropped:
            notes.append(
                f"- {label} {conns} conns {target}: {cell.dropped:.0f} records dropped "
                "(capture queue full)"
            )
    return "\n".join(notes)
