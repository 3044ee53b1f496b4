"""A new monitoring kind is one module (toy_section.py) plus one registration: monitor.toml has
its [endpoints.toy] table, the generic run writes its result into run.json, its files and its part
of report.html, and exports its metric."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from analyzer.config import ENV_PREFIX, MonitorConfig, load_config
from analyzer.exporter import AnalyzerCollector
from analyzer.job import run_window
from analyzer.registry import register, unregister
from analyzer.results import WITH_VIOLATIONS
from analyzer.statistics import profile_to_statistics
from analyzer.target_loading import load_target
from analyzer.window import Window
from modeltap.core.errors import ConfigError
from modeltap.core.settings import markdown_table
from modeltap.core.store.local import LocalStore
from tests.analyzer.test_job import T0, baseline, capture_line
from tests.analyzer.toy_section import TOY, ToyConfig


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


def monitor_toml(tmp_path: Path, toy: str) -> Path:
    """monitor.toml of one endpoint whose baseline is test_job's, with a [endpoints.toy] table."""
    target = baseline()
    folder = tmp_path / "baseline"
    folder.mkdir(parents=True)
    (folder / "statistics.json").write_bytes(orjson.dumps(profile_to_statistics(target.baseline)))
    (folder / "constraints.json").write_bytes(orjson.dumps(target.constraints))
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path}/captures"\nreports = "file://{tmp_path}/r"\n'
        f'[[endpoints]]\nname = "ep"\nvariant = "v1"\nbaseline = "file://{folder}"\n'
        f"[endpoints.toy]\n{toy}\n"
    )
    return path


@pytest.mark.usefixtures("toy")
async def test_the_toy_section_has_its_own_table(tmp_path: Path) -> None:
    """[endpoints.toy] is read, typed and checked by the settings machinery, documented in
    --help-config, and what the section runs with (a limit of 5: three objects are fine)."""
    cfg = load_config(monitor_toml(tmp_path, "limit = 5"), environ={})
    assert cfg.endpoints[0].sections == {"toy": ToyConfig(limit=5)}
    assert "| `endpoints[].toy.limit` | (file only) | int | `2` |" in markdown_table(
        MonitorConfig, ENV_PREFIX
    )
    target = await load_target(cfg.endpoints[0], cfg.store)
    assert target.sections["toy"] == ToyConfig(limit=5)
    captures = LocalStore(tmp_path / "captures")
    for minute in (0, 20, 40):
        when = T0 + dt.timedelta(minutes=minute)
        key = f"ep/v1/2026/03/01/10/{minute:02d}-00-000-a.jsonl"
        await captures.put(key, capture_line([0.1, 5.0], when), content_type="x")
    result = await run_window(
        captures, None, target, Window(T0, T0 + dt.timedelta(hours=1)), evaluate=None
    )
    assert result.sections["toy"].objects == 3 and result.violations_by_section["toy"] == 0

    with pytest.raises(ConfigError, match=r"endpoints\[1\]\.toy\.limit=-1\.?0?: must be >= 0"):
        load_config(monitor_toml(tmp_path / "neg", "limit = -1"), environ={})
    with pytest.raises(
        ConfigError,
        match=r"unknown key endpoints\[1\]\.toy\.limt \(did you mean endpoints\[1\]\.toy\.limit\?\)",
    ):
        load_config(monitor_toml(tmp_path / "typo", "limt = 5"), environ={})


def test_without_registration_its_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key endpoints\[1\]\.toy"):
        load_config(monitor_toml(tmp_path, "limit = 5"), environ={})
