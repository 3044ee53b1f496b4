"""The image installs `.[analyzer]` (Dockerfile): every third-party module that the sidecar, the
analyzer and the `modeltap` command import must come from the package's dependencies or the
analyzer extra (or what those pull in), not only from the dev extra the test virtualenv also has.
Only the demo modules may need the demo extra."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.procs import REPO

PACKAGES = ("sidecar", "analyzer", "modeltap")
DEMO_ONLY = {REPO / "modeltap" / "demo.py", REPO / "modeltap" / "demo_model.py"}


def declared(extras: tuple[str, ...]) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def with_dependencies(names: set[str]) -> set[str]:
    """The distributions pip installs for ``names``: their install requirements, recursively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def imported_top_level(path: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(path):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_imports_are_declared_for_the_image() -> None:
    owners = importlib.metadata.packages_distributions()
    allowed = with_dependencies(declared(("analyzer",)))
    missing: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path in DEMO_ONLY:
                continue
            for module in imported_top_level(ast.parse(path.read_text(), str(path))):
                if module in sys.stdlib_module_names or module in PACKAGES:
                    continue
                dists = {canonicalize_name(d) for d in owners.get(module, [module])}
                if not dists & allowed:
                    missing.setdefault(module, set()).add(str(path.relative_to(REPO)))
    assert not missing, (
        f"imported but not in [project].dependencies or the analyzer extra: {missing}"
    )
