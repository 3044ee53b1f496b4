"""The README's Layout section names every module and package of sidecar/, analyzer/, the
shared core, the dev harness and bench/'s shared modules, so a newcomer reading it sees the whole
tree (``cli_*.py``-style patterns count)."""

from __future__ import annotations

import fnmatch
import re

from harness.procs import REPO

PACKAGES = ("sidecar", "analyzer", "modeltap/core", "harness", "bench")


def layout_names() -> set[str]:
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Layout\n(.*?)^## ", readme, re.S | re.M)
    assert section, "README lacks a Layout section"
    return set(re.findall(r"`([^`\s]+)`", section.group(1)))


def test_the_readme_layout_names_every_module() -> None:
    names = layout_names()
    missing = []
    for package in PACKAGES:
        for path in sorted((REPO / package).iterdir()):
            if path.name.startswith(("_", ".")) or path.name == "py.typed":
                continue
            if path.is_dir() and (path / "__init__.py").exists():
                entry = f"{path.name}/"
            elif path.suffix == ".py":
                entry = path.name
            else:
                continue
            if not any(fnmatch.fnmatch(entry, n) or n == f"{package}/{entry}" for n in names):
                missing.append(f"{package}/{entry}")
    assert missing == [], f"README Layout does not mention {missing}"
