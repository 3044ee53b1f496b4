from __future__ import annotations

from pathlib import Path

import pytest

from modeltap.core.errors import ConfigError
from modeltap.core.settings import load, markdown_table
from sidecar.__main__ import load_config
from sidecar.config import ENV_PREFIX, SidecarConfig


def test_defaults_are_valid_and_sagemaker_like() -> None:
    cfg = load_config([], environ={})
    assert cfg.capture.sample_percent == 20.0
    assert cfg.capture.modes == ("Input", "Output")
    assert cfg.spool.max_disk_usage_percent == 75.0
    assert cfg.store.destination.startswith("file:///")


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "sidecar.toml"
    f.write_text(
        '[capture]\nsample_percent = 5\nendpoint_name = "from-file"\n[upstream]\nurl = "http://m:1"\n'
    )
    env = {
        "MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCENT": "7.5",
        "MODELTAP_SIDECAR_CAPTURE_MODES": "Output",
    }
    cfg = load_config(["--config", str(f), "--capture.sample-percent=9"], environ=env)
    assert cfg.capture.sample_percent == 9.0
    assert cfg.capture.endpoint_name == "from-file"
    assert cfg.capture.modes == ("Output",)
    assert cfg.upstream.url == "http://m:1"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {"MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCNT": "5"},
         "unknown environment variable MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCNT (did you mean MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCENT?)"),
        (["--capture.sample-percent", "150"], {}, "--capture.sample-percent=150.0: must be <= 100"),
        ([], {"MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCENT": "ten"}, "MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCENT='ten': expected a number"),
        (["--capture.modes", "Input,Both"], {}, "--capture.modes='Both': must be one of 'Input', 'Output'"),
        (["--capture.sampling", "hash"], {}, "must be one of 'random', 'inference_id'"),
        (["--capture.enabled", "maybe"], {}, "expected true or false"),
        (["--spool.flush-interval-seconds", "0"], {}, "must be > 0"),
        (["--upstream.url", "ftp://x"], {}, "upstream.url='ftp://x': expected http://host:port"),
        (["--capture.endpoint-name", "bad/name"], {}, "capture.endpoint_name='bad/name'"),
        (["--store.destination", "gs://b"], {}, "expected s3://bucket/prefix or file:///dir"),
        (["--store.kms-key-id", "k"], {}, "store.kms_key_id is set but store.sse is not 'aws:kms'"),
        (["--nope", "1"], {}, "unknown option --nope"),
        (["--capture.sample-percent"], {}, "option --capture.sample-percent needs a value"),
        (["--capture.json-content-types", "json"], {}, "'json' is not a type/subtype content type"),
        (["--server.port", "9090"], {}, "server.port and server.admin_port must differ"),
    ],
)  # fmt: skip
def test_bad_values_name_their_source(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(argv, environ=env)
    assert message in str(exc.value)


def test_bad_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[capture]\nsample_percentt = 1\n")
    with pytest.raises(
        ConfigError,
        match=r"unknown key capture.sample_percentt \(did you mean capture.sample_percent\?\)",
    ):
        load_config(["--config", str(f)], environ={})
    f.write_text("[capture\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(["--config", str(f)], environ={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(["--config", str(tmp_path / "missing.toml")], environ={})


def test_boolean_flag_without_value_and_other_prefixes_ignored() -> None:
    cfg = load(
        SidecarConfig,
        env_prefix=ENV_PREFIX,
        environ={"MODELTAP_ANALYZER_X": "1", "HOME": "/root"},
        argv=["--capture.capture-errors", "--store.gzip", "false"],
    )
    assert cfg.capture.capture_errors is True
    assert cfg.store.gzip is False


def test_markdown_table_lists_every_field_once() -> None:
    table = markdown_table(SidecarConfig, ENV_PREFIX)
    assert (
        "| `capture.sample_percent` | `MODELTAP_SIDECAR_CAPTURE_SAMPLE_PERCENT` | float | `20.0` |"
        in table
    )
    assert table.count("`MODELTAP_SIDECAR_SPOOL_DIR`") == 1


def test_config_does_not_import_the_redactor() -> None:
    """sidecar.redact imports the config; the config checks redaction paths without it."""
    import ast

    from harness.procs import REPO

    tree = ast.parse((REPO / "sidecar" / "config.py").read_text())
    imported = {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module is not None
    }
    assert "sidecar.redact" not in imported
    assert "sidecar.redact_paths" in imported


def test_store_connection_keys_are_shared_and_upload_keys_are_the_sidecars() -> None:
    from modeltap.core.store_config import StoreConnection
    from sidecar.config import StoreConfig

    assert issubclass(StoreConfig, StoreConnection)
    shared = {f.name for f in fields_of_section(StoreConnection)}
    assert shared == {"region", "endpoint_url", "path_style", "sse", "kms_key_id"}
    assert {"destination", "gzip", "max_concurrency"} <= {
        f.name for f in fields_of_section(StoreConfig)
    }


def fields_of_section(cls: type) -> list:  # type: ignore[type-arg]
    import dataclasses

    return list(dataclasses.fields(cls))
