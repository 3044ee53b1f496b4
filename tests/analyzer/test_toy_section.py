"""A new monitoring kind is one module (toy_section.py) plus one registration: the generic run
writes its result into run.json, its files and its part of report.html, and exports its metric."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from analyzer.exporter import AnalyzerCollector
from analyzer.job import run_window
from analyzer.registry import register, unregister
from analyzer.results import WITH_VIOLATIONS
from analyzer.window import Window
from modeltap.core.store.local import LocalStore
from tests.analyzer.test_job import T0, baseline, capture_line
from tests.analyzer.toy_section import TOY


@pytest.fixture
def toy() -> Iterator[None]:
    register(TOY)  # the one registration line
    try:
        yield
    finally:
        unregister(TOY.name)


@pytest.mark.usefixtures("toy")
async def test_a_toy_section_shows_up_everywhere(tmp_path: Path) -> None:
    captures, reports = LocalStore(tmp_path / "captures"), LocalStore(tmp_path / "reports")
    for minute in (0, 20, 40):  # three objects: one more than the toy allows
        when = T0 + dt.timedelta(minutes=minute)
        await captures.put(
            f"ep/v1/2026/03/01/10/{minute:02d}-00-000-a.jsonl",
            capture_line([0.1, 5.0], when) + capture_line([-0.2, 4.0], when),
            content_type="x",
        )
    result = await run_window(
        captures, reports, baseline(), Window(T0, T0 + dt.timedelta(hours=1)), evaluate=None
    )

    assert result.status == WITH_VIOLATIONS, result.error
    prefix = tmp_path / "reports" / "ep/v1/2026/03/01/11/2026-03-01T11-00-00Z"
    run = orjson.loads((prefix / "run.json").read_bytes())
    assert run["violations_by_section"] == {"data": 0, "toy": 1}
    assert orjson.loads((prefix / "toy" / "result.json").read_bytes())["objects"] == 3
    page = (prefix / "report.html").read_text()
    assert '<section id="toy"><h2>Toy objects</h2>' in page and "3 &gt; 2 objects" in page

    registry = CollectorRegistry()
    AnalyzerCollector(registry).record(result)
    text = generate_latest(registry).decode()
    assert 'modeltap_analyzer_toy_objects{endpoint="ep",model="",variant="v1"} 3.0' in text


async def test_without_registration_it_is_not_run(tmp_path: Path) -> None:
    captures = LocalStore(tmp_path / "captures")
    result = await run_window(
        captures, None, baseline(), Window(T0, T0 + dt.timedelta(hours=1)), evaluate=None
    )
    assert "toy" not in result.sections
