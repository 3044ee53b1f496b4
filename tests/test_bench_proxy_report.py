"""bench/proxy's verdicts: each line about the 100% sidecar says how many records it wrote, and
the perf summary splits native self time by thread (what bench/RESULTS.md records)."""

from __future__ import annotations

import sys

import pytest

from harness.procs import REPO


@pytest.fixture
def proxy_bench(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(REPO / "bench" / "proxy"))
    monkeypatch.syspath_prepend(str(REPO))
    for name in ("report", "profiling", "loadgen", "procs"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import report

    return report


def cell(report: object, **kw: object) -> object:
    base: dict[str, object] = dict(
        rps=1000.0, p50_us=1000.0, p99_us=2000.0, errors=0, cpu_us=30.0, captured=None, dropped=0.0
    )
    base.update(kw)
    return report.Cell(**base)  # type: ignore[attr-defined]


def test_verdicts_carry_the_records_written_share_and_the_aims(proxy_bench: object) -> None:
    r = proxy_bench
    cells = {}
    for label in ("1KB", "100KB"):
        cells[(label, 64, "nginx")] = cell(r, cpu_us=18.0)
        cells[(label, 64, "python floor")] = cell(r, cpu_us=20.0)
        cells[(label, 64, "direct")] = cell(r, cpu_us=None)
        cells[(label, 64, "sidecar 0%")] = cell(r, cpu_us=24.0, captured=0.0, loop_us=24.0)
    cells[("1KB", 64, "sidecar 100%")] = cell(
        r, cpu_us=30.0, captured=0.8, dropped=1200.0, loop_us=26.0, capture_us=5.0, p99_us=2500.0
    )
    cells[("100KB", 64, "sidecar 100%")] = cell(
        r, rps=800.0, cpu_us=90.0, captured=0.1, dropped=9000.0, loop_us=80.0, capture_us=100.0
    )
    grid = r.Grid(cells, ["1KB", "100KB"], [64], [t for (_l, _c, t) in cells if _l == "1KB"])  # type: ignore[attr-defined]
    text = r.verdicts(grid, "1KB", "100KB")  # type: ignore[attr-defined]
    summary = text[text.index("Verdicts:") :]
    # 18 / (26 + 5) = 0.58x nginx per core: the old target met, the new aim not
    assert "0.58x -> MET (aim >= 0.6x: NOT MET)" in summary
    assert "records written 0.80 per request (1,200 shed, counted)" in summary
    assert "sidecar 0% vs the python floor, CPU per request: 1.20x (aim <= 1.2x: MET)" in summary
    assert (
        "p99 at 64 connections, 1KB: sidecar 100% 2.50 ms, 0% 2.00 ms (capture adds +0.50 ms)"
        in summary
    )
    assert "writer CPU per record: 100 us (aim <= 60: NOT MET)" in summary
    assert "records written 0.10 per request (9,000 shed, counted) (aim >= 0.5: NOT MET)" in summary


def test_a_writer_nice_column_shows_served_against_written(proxy_bench: object) -> None:
    """--writer-nice's column is judged against the 0% sidecar, beside the default niceness."""
    r = proxy_bench
    name = "sidecar 100% (writer_nice 0)"
    cells = {
        ("100KB", 64, "sidecar 0%"): cell(r, rps=1000.0, cpu_us=58.0, captured=0.0, loop_us=58.0),
        ("100KB", 64, "sidecar 100%"): cell(
            r, rps=780.0, captured=0.2, dropped=800.0, loop_us=67.0, capture_us=56.0
        ),
        ("100KB", 64, name): cell(
            r, rps=600.0, captured=0.55, dropped=270.0, loop_us=67.0, capture_us=56.0
        ),
    }
    grid = r.Grid(cells, ["100KB"], [64], [t for (_l, _c, t) in cells])  # type: ignore[attr-defined]
    text = r.verdicts(grid, "1KB", "100KB")  # type: ignore[attr-defined]
    assert (
        "- 100KB sidecar 100% (writer_nice 0): served 0.60 of the 0% req/s, records written "
        "0.55 per request (270 shed, counted); default niceness: served 0.78, 0.20 written "
        "per request"
    ) in text


def test_section_is_per_cpu_model(proxy_bench: object) -> None:
    assert proxy_bench.section_heading("AMD EPYC") == "## bench/proxy (AMD EPYC)"  # type: ignore[attr-defined]


def test_perf_summary_splits_threads_and_categories(proxy_bench: object) -> None:
    import profiling

    report = """\
# Samples: 1K
    40.00%  100:python  orjson.cpython-311-x86_64-linux-gnu.so  [.] 0x0000000000012f87
    20.00%  100:python  libpython3.11.so.1.0                    [.] ascii_decode
    30.00%  7:python    [kernel.kallsyms]                       [k] tcp_sendmsg_locked
    10.00%  7:python    libc.so.6                               [.] __memmove_avx512_unaligned_erms
"""
    text = profiling.render_perf(report, {7: "MainThread", 100: "modeltap-spool"})
    writer, loop = text.splitlines()  # the busiest thread first
    assert loop.startswith("- **event loop (MainThread)**: 40% of the samples")
    assert "kernel: TCP, sockets, other 75%; memcpy 25%" in loop
    assert writer.startswith("- **spool writer thread**: 60% of the samples")
    assert "orjson (JSON escaping) 67%; UTF-8 decode 33%" in writer
