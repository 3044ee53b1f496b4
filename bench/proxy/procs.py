"""CPU pinning for the proxy benchmark: the proxy under test on one CPU, the load on the other.

Processes, ports and CPU time come from the shared harness (harness.procs, bench.common).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Pinning:
    """Which CPU runs the proxy under test and which runs the load side (wrk and the origin)."""

    proxy_cpu: int | None
    load_cpu: int | None

    def prefix(self, cpu: int | None) -> list[str]:
        return ["taskset", "-c", str(cpu)] if cpu is not None else []

    def describe(self) -> str:
        if self.proxy_cpu is None:
            return "no pinning (taskset missing, fewer than 2 usable CPUs, or --no-pin)"
        return (
            f"proxy under test (sidecar or nginx proxy, every thread) on CPU {self.proxy_cpu}; "
            f"wrk and the origin nginx share CPU {self.load_cpu}"
        )


def choose_pinning(enabled: bool) -> Pinning:
    """Pin to the first two CPUs this process may use when taskset exists."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or shutil.which("taskset") is None or len(cpus) < 2:
        return Pinning(None, None)
    return Pinning(cpus[0], cpus[1])
