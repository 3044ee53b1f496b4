"""bench/report: modeltap's HTML drift report beside Evidently's, on the same data.

The drift scenario (harness/drift_scenario.py, docs/drift.md §5: reference seed 1, current seed 2
with drift in 6 of 25 features) is written as two Parquet files to a temporary directory. Each
tool builds its report in its own child process:

- modeltap: ``analyzer.profile`` of both sides, ``analyzer.checks.evaluate(base,
  suggest_constraints(base), window)`` and ``analyzer.report_html.render_run`` of the data-quality fragment a
  monitoring run writes (``analyzer.reports.write_reports``), saved as report.html.
- Evidently (bench/.venv-peers): ``Report([DataDriftPreset()])`` with a ``DataDefinition`` of the
  numeric and categorical columns, saved with ``Snapshot.save_html`` (self-contained page).

Measured per page: bytes, gzip bytes (level 9), build time (from the data read to the page on
disk; reading the Parquet is not included), the child's peak RSS (``os.wait4`` ``ru_maxrss``;
imports and reading included), ``<script>`` tags, ``src``/``href`` attributes that fetch over
http(s), and how many of the 6 drifted feature names appear in the page text: the text outside
``<script>``/``<style>`` as served (what a reader sees without JavaScript), and the text of the
DOM after headless Chromium ran the page (when ``chromium`` is installed).

    .venv/bin/python bench/report/run.py --rows 100000
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PEERS = REPO / "bench" / ".venv-peers" / "bin" / "python"
CHROMIUM = shutil.which("chromium")
DRIFTED = ("normal_0", "normal_2", "lognormal_0", "cat_10", "cat_50", "cat_1000")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import run_child  # noqa: E402

# --------------------------------------------------------------------------- child processes


def write_sides(out: Path, rows: int) -> None:
    """The scenario's reference and current sides as ref.parquet and cur.parquet in ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.drift_scenario import generate

    for name, seed, drift in (("ref", 1, False), ("cur", 2, True)):
        cols = generate(rows, seed, drift=drift)
        table = pa.table(
            {k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in cols.items()}
        )
        pq.write_table(table, out / f"{name}.parquet", row_group_size=250_000)


def child_modeltap(ref: str, cur: str, out: str) -> None:
    """Build modeltap's report.html of the pair as a monitoring run would; print the times."""
    import pyarrow.parquet as pq

    from analyzer import profile, suggest_constraints
    from analyzer.checks import evaluate
    from analyzer.data_quality.result import DataResult
    from analyzer.data_quality.section import DATA
    from analyzer.report_html import render_run
    from analyzer.section import PageContext

    t0 = time.perf_counter()
    a, b = pq.read_table(ref), pq.read_table(cur)
    t1 = time.perf_counter()
    base = profile(a)
    window = profile(b, baseline=base)
    ev = evaluate(base, suggest_constraints(base), window)
    t2 = time.perf_counter()
    violations = [v.to_dict() for v in ev.violations]
    summary = {  # the fields of analyzer.results.run_summary
        "endpoint": "bench",
        "variant": "AllTraffic",
        "target_model": "",
        "start_time": "2026-03-01T10:00:00+00:00",
        "end_time": "2026-03-01T11:00:00+00:00",
        "status": "CompletedWithViolations" if violations else "Completed",
        "rows": b.num_rows,
        "objects": 1,
        "bad_objects": 0,
        "bad_lines": 0,
        "unparsed_records": 0,
        "unparsed_by_reason": {},
        "violations": len(violations),
        "violations_by_section": {"data": len(violations)},
        "custom": {},
    }
    data = DataResult(window, None, ev)  # data quality's part, as analyzer.reports draws it
    fragment = DATA.html(data, PageContext(summary, base))
    fragment = dataclasses.replace(fragment, violations=DATA.violations(data))
    Path(out).write_bytes(render_run(summary, [fragment]).encode())
    t3 = time.perf_counter()
    print(
        json.dumps(
            {"read_s": t1 - t0, "compute_s": t2 - t1, "render_s": t3 - t2, "build_s": t3 - t1}
        )
    )


# --------------------------------------------------------------------------- reading the pages


class PageScan(HTMLParser):
    """``<script>`` tags, http(s) ``src``/``href`` attributes, and the text a reader sees."""

    HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts = 0
        self.external: list[str] = []
        self.hidden = 0
        self.chunks: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for k, v in attrs:
            if k in ("src", "href", "xlink:href") and (v or "").startswith(
                ("http://", "https://", "//")
            ):
                self.external.append(v or "")
        if tag in self.HIDDEN:
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.chunks)


def named(text: str) -> list[str]:
    """The drifted features named in ``text`` (whole names: ``cat_10`` is not ``cat_1000``)."""
    return [n for n in DRIFTED if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]


def browser_dom(page: Path, profile_dir: Path, timeout: float = 180.0) -> str | None:
    """The page's DOM after headless Chromium loaded it and ran its scripts; None without it."""
    if CHROMIUM is None:
        return None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", f"--user-data-dir={profile_dir}", "--virtual-time-budget=30000",
           "--dump-dom", page.as_uri()]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, ended with its helpers below
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        print(f"chromium did not finish {page.name} within {timeout} s", file=sys.stderr)
        return None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        print(f"chromium failed on {page.name}: {err[-1000:]}", file=sys.stderr)
        return None
    return out


@dataclass
class Result:
    tool: str
    bytes: int
    gzip_bytes: int
    build_s: float
    wall_s: float
    rss_mib: float
    scripts: int
    external: list[str]
    named_static: list[str]
    named_browser: list[str] | None


def measure(tool: str, page: Path, wall: float, rss: float, info: dict[str, Any]) -> Result:
    raw = page.read_bytes()
    scan = PageScan(raw.decode())
    with tempfile.TemporaryDirectory(prefix="chromium-") as prof:
        dom = browser_dom(page, Path(prof))
    return Result(
        tool=tool,
        bytes=len(raw),
        gzip_bytes=len(gzip.compress(raw, compresslevel=9)),
        build_s=float(info["build_s"]),
        wall_s=wall,
        rss_mib=rss,
        scripts=scan.scripts,
        external=scan.external,
        named_static=named(scan.text),
        named_browser=None if dom is None else named(PageScan(dom).text),
    )


def table(results: list[Result]) -> str:
    lines = [
        "| tool | report bytes | gzip bytes | build s | peak RSS MiB | needs JavaScript "
        "| external requests | drifted named in page text, of 6: as served / in Chromium |",
        "|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in results:
        js = f"yes ({r.scripts} `<script>`)" if r.scripts else "no (0 `<script>`)"
        browser = "-" if r.named_browser is None else str(len(r.named_browser))
        lines.append(
            f"| {r.tool} | {r.bytes:,} | {r.gzip_bytes:,} | {r.build_s:.2f} | {r.rss_mib:,.0f} "
            f"| {js} | {len(r.external)} | {len(r.named_static)} / {browser} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_gen":
        write_sides(Path(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        child_modeltap(*sys.argv[2:5])
        return
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000, help="rows per side")
    p.add_argument(
        "--tools", nargs="+", choices=["modeltap", "evidently"], default=["modeltap", "evidently"]
    )
    p.add_argument("--keep", type=Path, help="copy the two pages into this directory")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        d = Path(tmp)
        # generated in a child: the parent stays small, so its image does not count in the
        # children's ru_maxrss (see bench/monitor/run.py generate_in_child)
        subprocess.run([sys.executable, __file__, "_gen", tmp, str(args.rows)], check=True)
        ref, cur = str(d / "ref.parquet"), str(d / "cur.parquet")
        runs = []
        for tool in args.tools:
            page = d / f"{tool}.html"
            if tool == "modeltap":
                cmd = [sys.executable, __file__, "_child", ref, cur, str(page)]
            elif PEERS.exists():
                cmd = [str(PEERS), str(HERE / "peer_evidently_html.py"), ref, cur, str(page)]
            else:
                print(
                    f"{PEERS} missing (bench/profile/README.md): skipping {tool}", file=sys.stderr
                )
                continue
            wall, rss, info = run_child(cmd)
            print(f"{tool}: process {wall:.2f} s, {rss:,.0f} MiB, {info}", file=sys.stderr)
            runs.append((tool, page, wall, rss, info))
        for tool, page, wall, rss, info in runs:
            r = measure(tool, page, wall, rss, info)
            print(
                f"{tool}: external={r.external} named as served={r.named_static} "
                f"in chromium={r.named_browser}",
                file=sys.stderr,
            )
            results.append(r)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(page, args.keep / page.name)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    print(f"{args.rows:,} rows per side", file=sys.stderr)
    print(table(results))


if __name__ == "__main__":
    main()
