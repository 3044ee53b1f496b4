"""atheris harness: configuration (the sidecar's TOML/env/flags loader, the monitor's TOML file).

Contract: a config object, or ConfigError.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports():
    from analyzer.config import load_config
    from modeltap.core.errors import ConfigError
    from modeltap.core.settings import load
    from sidecar.config import ENV_PREFIX, SidecarConfig

WORK = Path(tempfile.mkdtemp(prefix="mt-fuzz-config-"))
atexit.register(shutil.rmtree, WORK, True)
FILE = WORK / "config.toml"


def test_one_input(data: bytes) -> None:
    FILE.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_config(FILE)
    with contextlib.suppress(ConfigError):
        load(SidecarConfig, env_prefix=ENV_PREFIX, environ={}, file=FILE)
    # The same bytes as environment variables and flags: NAME=value lines.
    text = data.decode("utf-8", "replace")
    environ = dict(
        (f"{ENV_PREFIX}{k.strip().upper()}", v) for k, _, v in
        (line.partition("=") for line in text.splitlines()) if k.strip()
    )  # fmt: skip
    with contextlib.suppress(ConfigError):
        load(SidecarConfig, env_prefix=ENV_PREFIX, environ=environ)
    with contextlib.suppress(ConfigError):
        load(SidecarConfig, env_prefix=ENV_PREFIX, environ={}, argv=text.split())


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
