"""bench/ stands on the shared dev harness (harness/), never on tests/: a benchmark must keep
working when the tests are reorganised, and the tests must not grow code only benchmarks use."""

from __future__ import annotations

import ast

from harness.procs import REPO


def imports_from_tests(source: str) -> list[str]:
    """The modules under ``tests`` that ``source`` imports, or runs with ``python -m``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "tests"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "tests":
                found.append(node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("tests.")
            and node.value.replace(".", "").isidentifier()
        ):
            found.append(node.value)
    return found


def test_the_check_sees_each_kind_of_import() -> None:
    source = (
        "import tests.support.x\nfrom tests.integration import y\n"
        "cmd = ['python', '-m', 'tests.support.upstream']\nfrom harness.procs import Proc\n"
    )
    assert imports_from_tests(source) == [
        "tests.support.x",
        "tests.integration",
        "tests.support.upstream",
    ]


def test_bench_imports_nothing_from_tests() -> None:
    offenders = {
        str(path.relative_to(REPO)): found
        for path in sorted((REPO / "bench").rglob("*.py"))
        if ".venv" not in path.parts and (found := imports_from_tests(path.read_text()))
    }
    assert offenders == {}
