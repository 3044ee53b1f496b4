from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analyzer.config import load_config
from analyzer.monitor import next_run, window_ending
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
        ('schedule = "every hour"', "", "monitor.schedule='every hour': not a valid cron expression"),
        ("window_minutes = 0", "", "monitor.window_minutes=0.0: must be > 0"),
        ('captures2 = "x"', "", "unknown key monitor.captures2 (did you mean monitor.captures?)"),
        ("", '[store]\nendpoint = "x"\n', "unknown key store.endpoint (did you mean store.endpoint_url?)"),
        ("", '[[endpoints]]\nname = "only-name"\n', "endpoints[2]: baseline is required"),
        ("port = \"x\"", "", "monitor.port='x': expected an integer"),
        ('engine = "spark"', "", "monitor.engine='spark': must be one of 'local', 'dask'"),
        ('scheduler = "tcp://s:1"', "", "monitor.scheduler='tcp://s:1' needs monitor.engine='dask'"),
        ("", '[endpoints.quality]\nproblem_type = "Regression"\nbaseline = "file:///q"\n',
         "endpoints[1].quality needs ground_truth, or ground_truth.destination"),
        ("", '[endpoints.bias]\nbaseline = "file:///q"\n', "endpoints[1].bias needs facet"),
        ("", '[endpoints.attribution]\nbaseline = "file:///a"\nmodel_url = "ftp://m"\n',
         "endpoints[1].attribution: model client: model url must be http(s)://"),
        ("", '[[endpoints]]\nname = "e"\nbaseline = "file:///b"\n', "endpoint(s) listed twice: e/AllTraffic/"),
        ("", "[nope]\n", "unknown table [nope]"),
    ],
)  # fmt: skip
def test_bad_config_names_the_problem(tmp_path: Path, extra: str, tail: str, message: str) -> None:
    path = write(tmp_path, extra, tail)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "key", ["gzip", "max_concurrency", "destination", "multipart_threshold_bytes"]
)
def test_store_refuses_the_sidecars_upload_keys(tmp_path: Path, key: str) -> None:
    """[store] is the connection only: the sidecar's upload keys were silently accepted."""
    path = write(tmp_path, "", f"[store]\n{key} = 1\n")
    with pytest.raises(ConfigError, match=rf"unknown key store\.{key}"):
        load_config(path, environ={})


def test_store_keeps_its_connection_keys(tmp_path: Path) -> None:
    tail = '[store]\nregion = "eu-west-1"\nsse = "aws:kms"\nkms_key_id = "alias/k"\npath_style = true\n'
    cfg = load_config(write(tmp_path, "", tail), environ={})
    assert (cfg.store.region, cfg.store.sse, cfg.store.kms_key_id, cfg.store.path_style) == (
        "eu-west-1", "aws:kms", "alias/k", True,
    )  # fmt: skip


def test_environment_beats_the_file_and_flags_beat_both(tmp_path: Path) -> None:
    path = write(tmp_path, "workers = 2", '[store]\nendpoint_url = "http://file:1"\n')
    env = {
        "MODELTAP_MONITOR_STORE_ENDPOINT_URL": "http://env:2",
        "MODELTAP_MONITOR_MONITOR_WORKERS": "3",
        "MODELTAP_MONITOR_GROUND_TRUTH_DESTINATION": "file:///labels",
        "MODELTAP_SIDECAR_STORE_GZIP": "true",  # another command's prefix: not the monitor's
    }
    cfg = load_config(path, environ=env)
    assert (cfg.store.endpoint_url, cfg.monitor.workers) == ("http://env:2", 3)
    assert cfg.ground_truth.destination == "file:///labels"
    cfg = load_config(path, environ=env, flags={"monitor.workers": ("--workers", "4")})
    assert cfg.monitor.workers == 4
    with pytest.raises(ConfigError, match="--workers='x': expected an integer"):
        load_config(path, environ=env, flags={"monitor.workers": ("--workers", "x")})


def test_unknown_monitor_variable_names_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown environment variable MODELTAP_MONITOR_STORE_REGON "
        r"\(did you mean MODELTAP_MONITOR_STORE_REGION\?\)",
    ):
        load_config(write(tmp_path), environ={"MODELTAP_MONITOR_STORE_REGON": "x"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--once"], "the following arguments are required: --config"),
        (["--workers", "-1"], "--workers=-1: must be >= 0"),
        (["--engine", "spark"], "--engine='spark': must be one of 'local', 'dask'"),
        (["--once", "--end", "yesterday"], "--end='yesterday': expected an ISO-8601 time"),
        (["--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_monitor_command_bad_options_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from analyzer.cli.monitor import main

    config = [] if argv == ["--once"] else ["--config", str(write(tmp_path))]
    assert main([*config, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modeltap monitor: configuration error: ") and message in err, err
    assert err.count("\n") == 1, err
