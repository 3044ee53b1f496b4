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
