"""The request path's modules that the container image compiles with mypyc, and whether they run
compiled in this process.

Every proxied request (and every captured record) runs through these modules; compiled, they
cost about a third less CPU (bench/proxy: 65 -> 44 us per 1 KB request at 100% capture). They
stay ordinary, fully typed Python: a source checkout runs them as Python, and
``MODELTAP_COMPILE=1`` makes the build (``setup.py``, read by the image's build) compile them.
The modules around them (config, the store, the uploader, the analyzer) spend their time in I/O
or in C libraries and stay Python everywhere.

Writing code here (``make pytest-compiled`` runs the tests against the compiled build):

- Declared types are checked at run time: a value that does not match its annotation is a
  ``TypeError`` (uvloop's ``Server.sockets`` is a list where typeshed says tuple).
- One name per exception type in a function's ``except ... as`` clauses; class constants that
  subclasses override are ``ClassVar``.
- No async generators (bodies are pulled with ``next_chunk()``); in hot loops, index loops beat
  ``zip(..., strict=True)``, which is a generic call per item.
- No call in a slice's bounds: where mypyc has no slice primitive for the type sliced
  (``memoryview``, ``bytearray``) it evaluates the bounds twice, so ``data[os.write(fd, data):]``
  wrote every byte twice (tests/sidecar/test_compiled.py checks every module here).
- Module functions and native classes' methods are called natively: a test that monkeypatches
  them is not seen by compiled callers; patch what they call (``os``, ``fcntl``) instead.
"""

from __future__ import annotations

import importlib
import importlib.machinery

# The request path in the order a request meets it, then capture's hand-off and writer thread.
MODULES = (
    "sidecar.server",
    "sidecar.exchange",
    "sidecar.flow",
    "sidecar.headers",
    "sidecar.proxy",
    "sidecar.upstream",
    "sidecar.sampling",
    "sidecar.metrics",
    "modeltap.core.record",
    "sidecar.spool",
    "sidecar.segment",
)


def compiled_modules() -> list[str]:
    """The modules of :data:`MODULES` loaded from extension modules (empty when pure Python)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = []
    for name in MODULES:
        path = getattr(importlib.import_module(name), "__file__", None) or ""
        if path.endswith(suffixes):
            found.append(name)
    return found
