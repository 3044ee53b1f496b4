"""The request path runs compiled exactly where it was built to (`make pytest-compiled`, the image)."""

from __future__ import annotations

import os

from sidecar.compiled import MODULES, compiled_modules


def test_the_request_path_is_compiled_only_where_it_was_built() -> None:
    # `make pytest-compiled` sets MODELTAP_EXPECT_COMPILED=1 in its compiled copy of the tree; in
    # the checkout a stray extension module would shadow the source being tested.
    expected = list(MODULES) if os.environ.get("MODELTAP_EXPECT_COMPILED") == "1" else []
    assert compiled_modules() == expected
