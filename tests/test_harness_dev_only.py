"""harness/ serves the tests and the benchmarks only: the wheel (and so every image) leaves it out."""

from __future__ import annotations

import tomllib

from setuptools import find_packages

from harness.procs import REPO


def test_the_wheel_leaves_the_dev_harness_out() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(REPO), include=include)
    assert "sidecar" in packages and "analyzer" in packages
    assert [p for p in packages if p.split(".")[0] in ("harness", "tests", "bench")] == []
