"""Build hook: the metadata is in pyproject.toml; this only adds the compiled request path.

With ``MODELTAP_COMPILE=1`` the modules listed in ``sidecar/compiled.py`` are compiled with mypyc,
the spool's JSON escaper (``modeltap/core/_jsonesc.c``), the analyzer's JSON row reader
(``analyzer/_jsonrows.c``) and its text-to-number pass (``analyzer/_numparse.c``) are built beside
them (the container image is built this way). It needs the runtime dependencies installed for mypy
to type-check against, so it builds with ``--no-build-isolation``::

    pip install -c constraints.txt '.[analyzer]'        # pure Python
    MODELTAP_COMPILE=1 pip install --no-build-isolation -c constraints.txt --no-deps .
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from setuptools import setup


def _ext_modules() -> list[object]:
    flag = os.environ.get("MODELTAP_COMPILE", "")
    if flag not in ("", "0", "1"):
        raise SystemExit(f"MODELTAP_COMPILE must be 0 or 1, got {flag!r}")
    if flag != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            "MODELTAP_COMPILE=1 needs mypy installed (constraints.txt pins it) and "
            "--no-build-isolation: mypyc type-checks against the installed dependencies"
        ) from exc

    here = Path(__file__).resolve().parent
    modules = runpy.run_path(str(here / "sidecar" / "compiled.py"))["MODULES"]
    paths = [name.replace(".", "/") + ".py" for name in modules]
    from setuptools import Extension

    utf8 = "modeltap/core/_utf8seq.h"  # the UTF-8 rule both JSON extensions share
    escaper = Extension(
        "modeltap.core._jsonesc",
        ["modeltap/core/_jsonesc.c"],
        depends=[utf8],
        include_dirs=["modeltap/core"],
        extra_compile_args=["-O3"],
    )
    json_rows = Extension(
        "analyzer._jsonrows",
        ["analyzer/_jsonrows.c"],
        depends=["analyzer/_jsonrows_pow10.h", utf8],
        include_dirs=["modeltap/core"],
        extra_compile_args=["-O3"],
    )
    numparse = Extension("analyzer._numparse", ["analyzer/_numparse.c"], extra_compile_args=["-O3"])
    compiled = mypycify(paths, opt_level="3", group_name="modeltap_sidecar")
    return [*compiled, escaper, json_rows, numparse]


setup(ext_modules=_ext_modules())
