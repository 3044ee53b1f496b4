"""The import graph of sidecar/, analyzer/ and modeltap/, read from the source with ``ast``.

Every ``import`` and ``from ... import`` counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a lazy import still ties the two modules together.

- Layers: ``modeltap.core`` (record format, stores, error roots, JSON paths) imports neither
  process; the analyzer does not import the sidecar (the sidecar image ships without the
  analyzer, and the analyzer's image should not need the proxy).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sidecar", "analyzer", "modeltap")

# The sidecar's StoreConfig is still the type the two analyzer CLIs build their `[store]` settings
# with; the configuration work gives the analyzer its own store object. The library modules take
# the core's S3Settings protocol instead.
ANALYZER_USES_OF_SIDECAR = {
    ("analyzer.cli_baseline", "sidecar.config"),
    ("analyzer.cli_monitor", "sidecar.config"),
}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that ``name`` (a module or ``module.attribute``) lives in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ours that ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import submodule` imports the submodule; `from mod import name`, the module.
            names.extend(
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            )
    return {owner for n in names if (owner := _owner(n, known)) not in (None, module)}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports(module, path, known) for module, path in known.items()}


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import thing\n")
    (pkg / "b.py").write_text("from . import c\nfrom .c import x\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    known = {"pkg": pkg / "__init__.py"} | {f"pkg.{m}": pkg / f"{m}.py" for m in "abc"}
    assert imports("pkg.a", pkg / "a.py", known) == {"pkg.b"}
    assert imports("pkg.b", pkg / "b.py", known) == {"pkg.c"}
    assert imports("pkg.c", pkg / "c.py", known) == {"pkg.a"}


def test_the_core_imports_neither_process() -> None:
    upward = sorted(
        f"{module} imports {dep}"
        for module, deps in graph().items()
        if module.startswith("modeltap.core")
        for dep in deps
        if not dep.startswith("modeltap.core")
    )
    assert upward == []


def test_the_analyzer_imports_nothing_from_the_sidecar() -> None:
    uses = {
        (module, dep)
        for module, deps in graph().items()
        if module.startswith("analyzer")
        for dep in deps
        if dep.startswith("sidecar")
    }
    assert uses <= ANALYZER_USES_OF_SIDECAR, sorted(uses - ANALYZER_USES_OF_SIDECAR)
