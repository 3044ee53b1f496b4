"""wrk as the load generator: a Lua script POSTs a fixed CSV body and prints its results as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from procs import Pinning

from bench.common import WRK_DONE, WrkResult, parse_wrk, wrk_argv

_SCRIPT = """\
wrk.method = "POST"
local f = assert(io.open({path}, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/csv"

{done}"""


def write_script(directory: Path, label: str, body: Path) -> Path:
    """A wrk script that POSTs ``body`` as text/csv."""
    script = directory / f"post-{label}.lua"
    script.write_text(_SCRIPT.format(path=json.dumps(str(body)), done=WRK_DONE))
    return script


def run_wrk(url: str, script: Path, connections: int, seconds: int, pin: Pinning) -> WrkResult:
    """One bounded wrk run with one thread (wrk has one core) and ``connections`` connections."""
    argv = [*pin.prefix(pin.load_cpu), *wrk_argv(url, script, connections, seconds)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return parse_wrk(done.stdout + done.stderr)
