"""The README's configuration tables are generated from the config classes: they must agree."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from analyzer.baseline_config import ENV_PREFIX as BASELINE_PREFIX
from analyzer.baseline_config import BaselineConfig
from analyzer.config import ENV_PREFIX as MONITOR_PREFIX
from analyzer.config import MonitorConfig
from harness.procs import REPO
from modeltap.core.settings import markdown_table
from sidecar.config import ENV_PREFIX, SidecarConfig

TABLES = {
    "sidecar": (SidecarConfig, ENV_PREFIX),
    "monitor": (MonitorConfig, MONITOR_PREFIX),
    "baseline": (BaselineConfig, BASELINE_PREFIX),
}


@pytest.mark.parametrize("command", sorted(TABLES))
def test_readme_config_table_is_current(command: str) -> None:
    readme = (REPO / "README.md").read_text()
    m = re.search(
        rf"<!-- {command}-config:start -->\n(.*?)\n<!-- {command}-config:end -->", readme, re.S
    )
    assert m, f"README lacks the {command}-config markers"
    root, prefix = TABLES[command]
    assert m.group(1) == markdown_table(root, prefix), (
        f"README {command} table is stale: regenerate with `modeltap {command} --help-config`"
    )


@pytest.mark.parametrize("command", sorted(TABLES))
def test_help_config_prints_the_table(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modeltap", command, "--help-config"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip("\n") == markdown_table(*TABLES[command])
