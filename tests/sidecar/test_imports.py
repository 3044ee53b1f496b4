"""The sidecar runs beside every model: it must not load the analysis stack.

The sidecar image ships without numpy, pyarrow, scipy and dask; an import of one of them anywhere
under sidecar/ or the shared core modeltap/core/ (or in what ``modeltap sidecar`` loads) would
break that image at start-up, so it is caught here, in a fresh interpreter, for every module.
"""

from __future__ import annotations

import subprocess

from harness.procs import PYTHON, REPO

HEAVY = ("numpy", "pyarrow", "scipy", "dask", "distributed", "pandas", "sklearn", "datasketches")

PROBE = f"""
import importlib, pkgutil, sys
import sidecar, modeltap.core
from modeltap.cli import COMMANDS
importlib.import_module(COMMANDS["sidecar"][0])
for package in (sidecar, modeltap.core):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
loaded = sorted(n for n in {HEAVY!r} + ("analyzer",) if n in sys.modules)
print(",".join(loaded))
"""


def test_the_sidecar_loads_no_analysis_package() -> None:
    out = subprocess.run(
        [PYTHON, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "", f"the sidecar's modules import {out.stdout.strip()}"
