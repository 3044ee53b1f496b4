"""Processes for the proxy benchmark: free ports, CPU pinning, CPU time, start and stop by pid."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class Proc:
    """A child process with its output in a log file; :meth:`stop` ends it by its pid."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, cwd: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTAP_")}
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM by pid, SIGKILL by pid after ``timeout``."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(10)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """utime + stime of a process's main thread (the sidecar's event loop), from its task stat."""
    return cpu_seconds_of(Path(f"/proc/{pid}/task/{pid}/stat"))


def cpu_seconds_of(stat_path: Path) -> float:
    """utime + stime from a /proc stat file (fields 14 and 15; fields[0] below is field 3)."""
    stat = stat_path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers 200; fail early with the log if ``proc`` died."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s ({last})\n{proc.log_tail()}")


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen
