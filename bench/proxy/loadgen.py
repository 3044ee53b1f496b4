"""wrk as the load generator: a Lua script POSTs a fixed CSV body and prints its results as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import Pinning

WRK = shutil.which("wrk") or "/usr/bin/wrk"
_MARK = "BENCH_RESULT "

_SCRIPT = """\
wrk.method = "POST"
local f = assert(io.open({path}, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/csv"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, '
    .. '"non_2xx": %d, "p50_us": %.1f, "p99_us": %.1f, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_us: int
    errors: int
    non_2xx: int
    p50_us: float
    p99_us: float

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0


def write_script(directory: Path, label: str, body: Path) -> Path:
    """A wrk script that POSTs ``body`` as text/csv."""
    script = directory / f"post-{label}.lua"
    script.write_text(_SCRIPT.format(path=json.dumps(str(body)), mark=_MARK))
    return script


def run_wrk(url: str, script: Path, connections: int, seconds: int, pin: Pinning) -> WrkResult:
    """One bounded wrk run with one thread (wrk has one core) and ``connections`` connections."""
    argv = [
        *pin.prefix(pin.load_cpu),
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return _parse(done.stdout, done.stderr)


def _parse(stdout: str, stderr: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            data = json.loads(line[len(_MARK) :])
            return WrkResult(
                requests=int(data["requests"]),
                duration_us=int(data["duration_us"]),
                errors=int(data["errors"]),
                non_2xx=int(data["non_2xx"]),
                p50_us=float(data["p50_us"]),
                p99_us=float(data["p99_us"]),
            )
    raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")
