"""Each image installs the package with the extra its process needs (Dockerfile): the sidecar
image only the core dependencies, the analyzer image the analyzer extra, the demo image the demo
extra. Every third-party module a package imports must come from what its image installs (or
what those pull in), not only from the dev extra the test virtualenv also has; and the core
dependencies, all the sidecar image gets, must not pull in the analysis stack."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.procs import REPO

PACKAGES = ("sidecar", "analyzer", "modeltap")
DEMO_ONLY = {REPO / "modeltap" / "demo.py", REPO / "modeltap" / "demo_model.py"}
# What `modeltap sidecar` runs: the sidecar package and the command that dispatches to it.
SIDECAR_IMAGE = [*sorted((REPO / "sidecar").rglob("*.py")), REPO / "modeltap" / "cli.py"]
ANALYSIS_STACK = {"numpy", "pyarrow", "scipy", "dask", "distributed", "pandas", "scikit-learn"}


def declared(extras: tuple[str, ...]) -> set[tuple[str, frozenset[str]]]:
    """The project's requirements with ``extras``, as (distribution, its requested extras)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return {_name_and_extras(Requirement(r)) for r in reqs}


def _name_and_extras(req: Requirement) -> tuple[str, frozenset[str]]:
    return canonicalize_name(req.name), frozenset(canonicalize_name(e) for e in req.extras)


def with_dependencies(reqs: set[tuple[str, frozenset[str]]]) -> set[str]:
    """The distributions pip installs for ``reqs``: their install requirements, recursively,
    including those of the extras asked for (``dask[distributed]`` pulls in ``distributed``)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(reqs)
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        name, extras = item
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            )
            if wanted:
                todo.append(_name_and_extras(req))
    return {name for name, _ in seen}


def imported_top_level(path: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(path):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def undeclared_imports(paths: list[Path], extras: tuple[str, ...]) -> dict[str, set[str]]:
    """Third-party modules imported by ``paths`` that the requirements with ``extras`` lack."""
    owners = importlib.metadata.packages_distributions()
    allowed = with_dependencies(declared(extras))
    missing: dict[str, set[str]] = {}
    for path in paths:
        for module in imported_top_level(ast.parse(path.read_text(), str(path))):
            if module in sys.stdlib_module_names or module in PACKAGES:
                continue
            dists = {canonicalize_name(d) for d in owners.get(module, [module])}
            if not dists & allowed:
                missing.setdefault(module, set()).add(str(path.relative_to(REPO)))
    return missing


def test_sidecar_imports_only_the_core_dependencies() -> None:
    missing = undeclared_imports(SIDECAR_IMAGE, ())
    assert not missing, f"the sidecar imports what [project].dependencies lacks: {missing}"


def test_core_dependencies_leave_out_the_analysis_stack() -> None:
    # The sidecar image is the core dependencies and nothing else: one model pod's sidecar must
    # not carry numpy, pyarrow, scipy or dask (tests/deploy/test_images.py checks the built image).
    pulled = with_dependencies(declared(()))
    assert not pulled & ANALYSIS_STACK, sorted(pulled & ANALYSIS_STACK)


def test_analyzer_imports_are_declared_for_the_analyzer_image() -> None:
    paths = [
        p
        for package in PACKAGES
        for p in sorted((REPO / package).rglob("*.py"))
        if p not in DEMO_ONLY
    ]
    missing = undeclared_imports(paths, ("analyzer",))
    assert not missing, (
        f"imported but not in [project].dependencies or the analyzer extra: {missing}"
    )


def test_demo_model_imports_are_declared_for_the_demo_image() -> None:
    missing = undeclared_imports([REPO / "modeltap" / "demo_model.py"], ("demo",))
    assert not missing, f"the demo model imports what the demo extra lacks: {missing}"
