"""The import graph of sidecar/, analyzer/ and modeltap/, read from the source with ``ast``.

Every ``import`` and ``from ... import`` counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a lazy import still ties the two modules together.

- Layers: ``modeltap.core`` (record format, stores, error roots, JSON paths) imports neither
  process; the analyzer does not import the sidecar (the sidecar image ships without the
  analyzer, and the analyzer's image should not need the proxy).
- No circles: two modules that import each other (directly or around a loop) cannot be read,
  tested or moved one at a time; the test names every circle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sidecar", "analyzer", "modeltap")

# No exceptions: no circle, and the analyzer uses nothing of the sidecar.
KNOWN_CIRCLES: list[list[str]] = []

ANALYZER_USES_OF_SIDECAR: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages; a C extension module
    is known by its stub (``_x.pyi`` beside ``_x.c``): importing it imports no module of ours."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        paths = (REPO / package).rglob("*.py*")
        for path in sorted(p for p in paths if p.suffix in (".py", ".pyi")):
            if path.suffix == ".pyi" and path.with_suffix(".py").exists():
                continue
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


def circles(deps: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that reach one another (Tarjan's strongly connected components of
    more than one module), its names sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative depth-first search (the graph is a few hundred modules; no recursion limit).
        work = [(start, iter(sorted(deps.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(deps.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for module in sorted(deps):
        if module not in index:
            visit(module)
    return sorted(found)


def loop(group: list[str], deps: dict[str, set[str]]) -> list[str]:
    """A shortest loop from the group's first module back to it, through the group."""
    members = set(group)
    start = group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(deps[node] & members):
            if child == start:
                return paths[node]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return group  # unreachable for a strongly connected group


def test_the_circle_finder_names_each_loop() -> None:
    deps = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert circles(deps) == [["a", "b", "c"], ["d", "e"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    two_loops = {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}
    assert circles(two_loops) == [["a", "b", "c"]]
    assert loop(["a", "b", "c"], two_loops) == ["a", "b"]


def test_there_are_no_import_circles() -> None:
    deps = graph()
    unexpected = [
        f"{', '.join(group)} (e.g. {' -> '.join([*loop(group, deps), group[0]])})"
        for group in circles(deps)
        if group not in KNOWN_CIRCLES
    ]
    assert unexpected == [], "modules importing each other:\n" + "\n".join(unexpected)
