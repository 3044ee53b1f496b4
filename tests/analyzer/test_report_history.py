"""A report for every run: per-run directories, an index listing every kept run, retention, and
the newest run at a stable ``latest/`` URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import orjson

from analyzer.job import run_window
from analyzer.report_history import prune
from analyzer.reports import write_reports
from analyzer.window import Window
from modeltap.core.store.local import LocalStore
from tests.analyzer.test_job import T0, baseline, capture_line


async def test_every_run_kept_then_bounded(tmp_path: Path) -> None:
    captures, reports = LocalStore(tmp_path / "captures"), LocalStore(tmp_path / "reports")
    rng = np.random.default_rng(1)
    lines = [
        capture_line(list(rng.normal(0, 1, 2).round(4)), T0 + dt.timedelta(seconds=10 * i))
        for i in range(360)
    ]
    await captures.put("ep/v1/2026/03/01/10/00-00-000-a.jsonl", b"".join(lines), content_type="x")
    target = baseline()
    ends = [T0 + dt.timedelta(minutes=m) for m in (20, 25, 30, 35)]  # four runs in one hour
    root = tmp_path / "reports" / "ep"
    for i, end in enumerate(ends):
        result = await run_window(
            captures, None, target, Window(end - dt.timedelta(minutes=20), end), evaluate=None
        )
        await write_reports(reports, result, target.baseline, keep=3)
        index = orjson.loads((root / "index.json").read_bytes())
        assert len(index) == min(i + 1, 3)  # every run listed, up to keep
        latest = orjson.loads((root / "v1/latest/run.json").read_bytes())
        assert dt.datetime.fromisoformat(latest["end_time"]) == end
        stats = orjson.loads((root / "v1/latest/statistics.json").read_bytes())
        assert stats["dataset"]["item_count"] == 120  # this run's 20 minutes, not an older one's
    runs = sorted(p.parent.name for p in (root / "v1/2026/03/01/10").rglob("*.json"))
    runs = sorted(set(runs))  # the oldest run's files are gone (a local store keeps its dir)
    assert runs == ["2026-03-01T10-25-00Z", "2026-03-01T10-30-00Z", "2026-03-01T10-35-00Z"]
    assert [e["href"] for e in index] == [
        f"v1/2026/03/01/10/{name}/report.html" for name in reversed(runs)
    ]
    for name in runs:
        assert (root / "v1/2026/03/01/10" / name / "statistics.json").exists()


async def test_an_older_window_does_not_replace_latest(tmp_path: Path) -> None:
    captures, reports = LocalStore(tmp_path / "captures"), LocalStore(tmp_path / "reports")
    line = capture_line([0.5, 1.5], T0 + dt.timedelta(minutes=1))
    await captures.put("ep/v1/2026/03/01/10/00-00-000-a.jsonl", line, content_type="x")
    target = baseline()
    for end in (T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=10)):  # a re-run
        result = await run_window(captures, None, target, Window(T0, end), evaluate=None)
        await write_reports(reports, result, target.baseline)
    latest = orjson.loads((tmp_path / "reports/ep/v1/latest/run.json").read_bytes())
    assert latest["end_time"].startswith("2026-03-01T10:30:00")


async def test_a_pruned_run_loses_its_sections_subdirectories(tmp_path: Path) -> None:
    """A run that falls off the index loses every file, model-quality/, bias/, llm/... too."""
    reports = LocalStore(tmp_path / "reports")
    hrefs = []
    for minute in (5, 10):
        run = f"v1/2026/03/01/10/2026-03-01T10-{minute:02d}-00Z"
        for name in ("run.json", "model-quality/statistics.json", "bias/analysis.json"):
            await reports.put(f"ep/{run}/{name}", b"{}", content_type="application/json")
        hrefs.append(f"{run}/report.html")
    dropped = [{"href": hrefs[0]}]
    assert await prune(reports, "ep", dropped) == 3
    assert not [p for p in (tmp_path / "reports/ep" / hrefs[0]).parent.rglob("*") if p.is_file()]
    kept = (tmp_path / "reports/ep" / hrefs[1]).parent
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*.json")) == [
        "bias/analysis.json", "model-quality/statistics.json", "run.json"
    ]  # fmt: skip


async def test_latest_holds_only_the_newest_runs_files(tmp_path: Path) -> None:
    """A window without data after one with data: latest/ has no statistics.json of the older."""
    captures, reports = LocalStore(tmp_path / "captures"), LocalStore(tmp_path / "reports")
    line = capture_line([0.5, 1.5], T0 + dt.timedelta(minutes=1))
    await captures.put("ep/v1/2026/03/01/10/00-00-000-a.jsonl", line, content_type="x")
    target = baseline()
    for start in (T0, T0 + dt.timedelta(minutes=30)):  # the second window holds no record
        window = Window(start, start + dt.timedelta(minutes=20))
        result = await run_window(captures, None, target, window)
        await write_reports(reports, result, target.baseline)
    latest = tmp_path / "reports/ep/v1/latest"
    assert orjson.loads((latest / "run.json").read_bytes())["status"] == "NoData"
    assert not (latest / "statistics.json").exists()
    older = tmp_path / "reports/ep/v1/2026/03/01/10/2026-03-01T10-20-00Z"
    assert (older / "statistics.json").exists()  # the run's own directory keeps it
