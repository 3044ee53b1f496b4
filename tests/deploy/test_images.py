"""The built images hold what their process needs and nothing of the others' (`make images`):
inspected from inside each image, by its own Python."""

from __future__ import annotations

import json

import pytest

from tests.support.podman import built_image, podman, require_images

pytestmark = pytest.mark.pods

ANALYSIS_STACK = {"numpy", "pyarrow", "scipy", "dask", "distributed", "pandas", "scikit-learn"}
BUILD_TOOLS = {"pip", "setuptools", "mypy", "wheel"}
# The installed distributions, what `modeltap sidecar` loads, and where the compiled modules are.
INSPECT = """
import importlib.metadata, json, os, shutil, subprocess, sys
dists = sorted({d.metadata["Name"].lower().replace("_", "-") for d in importlib.metadata.distributions()})
site = [p for p in sys.path if p.endswith("site-packages")]
print(json.dumps({"dists": dists, "site": site, "uid": os.getuid(),
                  "gcc": shutil.which("gcc"), "cc": shutil.which("cc")}))
"""
SIDECAR_IMPORTS = """
import json, sys
import sidecar.__main__, modeltap.core.store.s3, modeltap.core.store.local
from sidecar.compiled import MODULES, compiled_modules
print(json.dumps({"modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "compiled": compiled_modules() == list(MODULES)}))
"""


@pytest.fixture(scope="module", autouse=True)
def images() -> None:
    require_images()


def python_in(purpose: str, code: str) -> dict[str, object]:
    out = podman("run", "--rm", "--network", "host", "--read-only", "--entrypoint", "python",
                 built_image(purpose), "-c", code)  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def size_mb(purpose: str) -> float:
    out = podman("image", "inspect", "--format", "{{.Size}}", built_image(purpose))
    return int(out.stdout) / 1e6


def test_sidecar_image_holds_only_what_the_sidecar_imports() -> None:
    found = python_in("sidecar", INSPECT)
    dists = set(found["dists"])  # type: ignore[arg-type]
    assert not dists & ANALYSIS_STACK, sorted(dists & ANALYSIS_STACK)
    assert not dists & BUILD_TOOLS, sorted(dists & BUILD_TOOLS)
    assert {"aiohttp", "aiobotocore", "httptools", "orjson", "uvloop"} <= dists
    assert found["uid"] == 10001
    assert found["gcc"] is None and found["cc"] is None
    loaded = python_in("sidecar", SIDECAR_IMPORTS)
    assert loaded["compiled"] is True, "the request path runs compiled in the sidecar image"
    assert not set(loaded["modules"]) & {"numpy", "pyarrow", "scipy", "dask"}  # type: ignore[arg-type]
    # The analyzer's commands say which image has them, in one line.
    monitor = podman("run", "--rm", "--network", "host", built_image("sidecar"),
                     "monitor", "--config", "/dev/null", check=False)  # fmt: skip
    assert monitor.returncode == 2, monitor.stderr
    assert "run it on the modeltap-analyzer image" in monitor.stderr
    assert "Traceback" not in monitor.stderr
    print(f"sidecar image: {size_mb('sidecar'):.0f} MB")


def test_analyzer_image_runs_the_analyzer_and_dask() -> None:
    found = python_in("analyzer", INSPECT)
    dists = set(found["dists"])  # type: ignore[arg-type]
    assert {"numpy", "pyarrow", "scipy", "dask", "distributed", "datasketches"} <= dists
    assert not dists & BUILD_TOOLS, sorted(dists & BUILD_TOOLS)
    assert "scikit-learn" not in dists
    # The analyzer's Arrow pool is the one its memory figures were measured with.
    pool = python_in("analyzer", "import json, pyarrow; "
                     "print(json.dumps({'pool': pyarrow.default_memory_pool().backend_name}))")  # fmt: skip
    assert pool == {"pool": "jemalloc"}
    # The capture reader's C passes (analyzer/_numparse.c), which its throughput figures need.
    c = python_in("analyzer", "import json; from analyzer import numparse; "
                  "print(json.dumps({'compiled': numparse.compiled}))")  # fmt: skip
    assert c == {"compiled": True}
    # The Dask component runs `dask scheduler` and `dask worker` on this image.
    podman("run", "--rm", "--network", "host", "--entrypoint", "dask",
           built_image("analyzer"), "scheduler", "--help")  # fmt: skip
    print(f"analyzer image: {size_mb('analyzer'):.0f} MB")


def test_demo_image_runs_the_demo_model() -> None:
    found = python_in("demo", INSPECT)
    dists = set(found["dists"])  # type: ignore[arg-type]
    assert {"scikit-learn", "numpy"} <= dists
    assert not dists & ({"pyarrow", "dask", "distributed"} | BUILD_TOOLS)
    print(f"demo image: {size_mb('demo'):.0f} MB")
