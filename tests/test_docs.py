"""The README's configuration table is generated from the config classes: they must agree."""

from __future__ import annotations

import re

from modeltap.core.settings import markdown_table
from sidecar.config import ENV_PREFIX, SidecarConfig
from tests.support.procs import REPO


def test_readme_sidecar_config_table_is_current() -> None:
    readme = (REPO / "README.md").read_text()
    m = re.search(
        r"<!-- sidecar-config:start -->\n(.*?)\n<!-- sidecar-config:end -->", readme, re.S
    )
    assert m, "README lacks the sidecar-config markers"
    assert m.group(1) == markdown_table(SidecarConfig, ENV_PREFIX), (
        "README config table is stale: regenerate with `python -m sidecar --help-config`"
    )
