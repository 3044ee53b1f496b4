"""Configuration from files, the environment and flags: it loads or raises ConfigError."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analyzer.config import MonitorConfig, load_config
from modeltap.core.errors import ConfigError
from modeltap.core.settings import fields_of, load
from sidecar.config import ENV_PREFIX, SidecarConfig
from tests.fuzz.strategies import FUZZ, TEXT

INFOS = list(fields_of(SidecarConfig))
VALUES = TEXT | st.sampled_from(
    ["0", "-1", "1e400", "nan", "inf", "true", "s3://b/p", "file:///tmp/x", "s3://[", "a,b", "1_0",
     "http://127.0.0.1:1", "AES256", "Input,Output", "9" * 5000]
)  # fmt: skip
TOML_VALUES = (
    VALUES
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.booleans()
    | st.lists(VALUES, max_size=3)
    | st.dictionaries(TEXT, VALUES, max_size=2)
)


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
    if isinstance(v, str):
        return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or c in '"\\' else c
                             for c in v) + '"'  # fmt: skip
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def sidecar(**kw: object) -> None:
    try:
        cfg = load(SidecarConfig, env_prefix=ENV_PREFIX, **kw)  # type: ignore[arg-type]
    except ConfigError:
        return
    assert isinstance(cfg, SidecarConfig)


FIELD = st.sampled_from(INFOS)


@FUZZ
@given(st.dictionaries(FIELD.map(lambda i: i.env_name(ENV_PREFIX)) | st.just(ENV_PREFIX + "X"),
                       VALUES, max_size=4))  # fmt: skip
@example({"MODELTAP_SIDECAR_STORE_DESTINATION": "s3://["})
@example({"MODELTAP_SIDECAR_STORE_DESTINATION": "s3://b/p", "MODELTAP_SIDECAR_STORE_REGION": ""})
def test_sidecar_environment(environ: dict[str, str]) -> None:
    sidecar(environ=environ)


@FUZZ
@given(st.lists(st.tuples(FIELD.map(lambda i: i.flag) | TEXT, VALUES), max_size=4),
       st.booleans())  # fmt: skip
def test_sidecar_flags(flags: list[tuple[str, str]], joined: bool) -> None:
    argv = [f"{f}={v}" for f, v in flags] if joined else [x for fv in flags for x in fv]
    sidecar(environ={}, argv=argv)


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(FIELD, TOML_VALUES), max_size=4) | st.binary(max_size=300))
@example(b'[store]\ndestination = "s3://b/p"\nmultipart_threshold_bytes = 1e3\n')
@example(b"[store]\nretry_base_seconds = " + b"9" * 400 + b"\n")
@example(b"\xff\xfe")
def test_sidecar_toml_file(tmp_path: Path, doc: list[tuple[object, object]] | bytes) -> None:
    path = tmp_path / "sidecar.toml"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(
            "".join(f"[{i.section}]\n{i.name} = {toml_value(v)}\n" for i, v in doc)  # type: ignore[attr-defined]
        )
        try:
            tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError:
            return  # the same key twice: not a TOML document
    sidecar(environ={}, file=path)


MONITOR_KEYS = {
    "monitor": ["captures", "reports", "window_minutes", "end_offset_minutes", "interval_seconds",
                "schedule", "host", "port", "engine", "workers", "store", "endpoints"],
    "store": ["region", "endpoint_url", "path_style", "sse", "max_concurrency"],
    "ground_truth": ["destination", "token_env", "token_file", "max_body_mib"],
    "endpoints": ["name", "baseline", "variant", "output_columns", "dataset", "dataset_format",
                  "partitioned", "quality", "target_model"],
    "quality": ["problem_type", "baseline", "inference_index", "probability_attribute",
                "probability_threshold", "label_delay_hours", "ground_truth"],
}  # fmt: skip
GOOD_VALUES = {
    "captures": "file:///tmp/c", "reports": "s3://b/r", "baseline": "file:///tmp/b",
    "name": "e", "problem_type": "BinaryClassification", "destination": "s3://b/gt",
    "schedule": "*/5 * * * *", "probability_attribute": "p[*]",
}  # fmt: skip


@st.composite
def monitor_docs(draw: st.DrawFn) -> str:
    """A monitor TOML document: the right tables and keys, with good or arbitrary values."""

    def table(name: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for key in draw(st.lists(st.sampled_from(MONITOR_KEYS[name]), max_size=6, unique=True)):
            good = GOOD_VALUES.get(key)
            out[key] = good if good is not None and draw(st.booleans()) else draw(TOML_VALUES)
        return out

    lines = []
    for name in draw(st.lists(st.sampled_from(["monitor", "store", "ground_truth"]), unique=True)):
        body = table(name)
        lines.append(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items()))
    for _ in range(draw(st.integers(0, 2))):
        ep = table("endpoints")
        quality = table("quality") if draw(st.booleans()) else None
        ep.pop("quality", None)
        block = "[[endpoints]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in ep.items())
        if quality is not None:
            block += "[endpoints.quality]\n" + "".join(
                f"{k} = {toml_value(v)}\n" for k, v in quality.items()
            )
        lines.append(block)
    return "".join(lines)


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(monitor_docs() | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
@example("[monitor]\ncaptures = 1\nreports = 2\n")
@example("monitor = 5\n")
@example('endpoints = "e"\n[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\n')
@example('[monitor]\ncaptures = "s3://["\nreports = "file:///r"\n')
@example('[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\nwindow_minutes = nan\n'
         '[[endpoints]]\nname = "e"\nbaseline = "file:///b"\n')  # fmt: skip
@example('[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\nstore = {}\n'
         '[[endpoints]]\nname = "e"\nbaseline = "file:///b"\n')  # fmt: skip
@example('[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\n'
         '[[endpoints]]\nname = ["e"]\nbaseline = "file:///b"\n'
         '[[endpoints]]\nname = ["e"]\nbaseline = "file:///b"\n')  # fmt: skip
def test_monitor_config_loads_or_raises_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        cfg = load_config(path)
    except ConfigError:
        return
    assert isinstance(cfg, MonitorConfig) and cfg.endpoints


def test_monitor_config_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_bytes(b'[monitor]\ncaptures = "\xff"\n')
    try:
        load_config(path)
    except ConfigError as exc:
        assert "UTF-8" in str(exc) or "TOML" in str(exc)
    else:
        raise AssertionError("accepted a file that is not UTF-8")
