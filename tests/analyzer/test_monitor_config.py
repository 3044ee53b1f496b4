from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analyzer.cli_monitor import load_config, next_run, window_ending
from modeltap.core.errors import ConfigError

BASE = '[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\n{extra}\n[[endpoints]]\nname = "e"\nbaseline = "file:///b"\n'


def write(tmp_path: Path, extra: str = "", tail: str = "") -> Path:
    p = tmp_path / "m.toml"
    p.write_text(BASE.format(extra=extra) + tail)
    return p


def test_cron_and_interval_schedules(tmp_path: Path) -> None:
    now = dt.datetime(2026, 3, 1, 10, 17, 30, tzinfo=dt.UTC)
    hourly = load_config(write(tmp_path, 'schedule = "0 * * * *"\nend_offset_minutes = 5'))
    assert next_run(now, hourly) == dt.datetime(2026, 3, 1, 11, 0, tzinfo=dt.UTC)
    w = window_ending(dt.datetime(2026, 3, 1, 11, 0, tzinfo=dt.UTC), hourly)
    assert (w.start, w.end) == (
        dt.datetime(2026, 3, 1, 9, 55, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 10, 55, tzinfo=dt.UTC),
    )
    every = load_config(write(tmp_path, "interval_seconds = 90"))
    assert next_run(now, every) == now + dt.timedelta(seconds=90)


@pytest.mark.parametrize(
    ("extra", "tail", "message"),
    [
        ('schedule = "every hour"', "", "not a valid cron expression"),
        ("window_minutes = 0", "", "window_minutes must be > 0"),
        ('captures2 = "x"', "", "unknown key(s) captures2"),
        ("", '[store]\nendpoint = "x"\n', "unknown key(s) endpoint"),
        ("", '[[endpoints]]\nname = "only-name"\n', "needs name and baseline"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, extra: str, tail: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, extra, tail))
