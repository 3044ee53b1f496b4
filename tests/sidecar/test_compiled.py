"""The request path runs compiled exactly where it was built to (`make pytest-compiled`, the image)."""

from __future__ import annotations

import os

from sidecar.compiled import MODULES, compiled_modules


def test_the_request_path_is_compiled_only_where_it_was_built() -> None:
    # `make pytest-compiled` sets MODELTAP_EXPECT_COMPILED=1 in its compiled copy of the tree; in
    # the checkout a stray extension module would shadow the source being tested.
    expected = list(MODULES) if os.environ.get("MODELTAP_EXPECT_COMPILED") == "1" else []
    assert compiled_modules() == expected


def test_capture_items_are_built_by_compiled_code_where_compiled() -> None:
    # Every captured request builds a CaptureItem on the event loop. The __init__ that
    # dataclasses generates is Python bytecode even in a compiled module (mypyc keeps generated
    # methods as they are); a written-out one is compiled with the rest of the module.
    import types

    from modeltap.core.record import CaptureItem

    init = CaptureItem.__init__
    if os.environ.get("MODELTAP_EXPECT_COMPILED") == "1":
        assert not isinstance(init, types.FunctionType), "CaptureItem.__init__ is interpreted"
    item = CaptureItem(1.0, "POST", "/p", 200, 0.001, None, None, b"in", "text/csv", None, None)
    assert (item.record, item.input_recorded, item.stream, item.genai_fields) == (
        True,
        True,
        None,
        None,
    )


def test_no_slice_bound_in_a_compiled_module_calls_anything() -> None:
    # mypyc (2.4) evaluates a slice's bounds twice where it has no slice primitive for the type
    # sliced (memoryview, bytearray): compiled, ``data[os.write(fd, data):]`` in sidecar.segment
    # wrote every byte twice. A bound is a name, a constant or arithmetic on them.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = []
    for name in MODULES:
        path = root / (name.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Slice):
                for bound in (node.lower, node.upper, node.step):
                    if bound is not None and any(isinstance(n, ast.Call) for n in ast.walk(bound)):
                        found.append(
                            f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(bound)}"
                        )
    assert not found
