"""Start and stop real processes for tests: free ports, readiness polling, stop by pid."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[1]


_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=512)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, and not one this process handed out lately.

    The kernel may give the same ephemeral port to two binds in a row once the first socket is
    closed, so two calls made before either port is used (a sidecar's proxy and admin ports)
    could collide; ports handed out recently are skipped.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.append(port)
            return port
    raise RuntimeError("no TCP port on 127.0.0.1 that was not handed out lately")


class Proc:
    """A child process whose output goes to a log file; ``stop`` always ends it by pid."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTAP_")}
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)


def wait_http(url: str, proc: Proc | None = None, timeout: float = 30.0, status: int = 200) -> None:
    """Poll ``url`` until it answers ``status``; fail early with the log if ``proc`` died."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == status:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    log = proc.log()[-4000:] if proc is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout}s ({last})\n{log}")


def start_ready(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    ready_url: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    cwd: Path = REPO,
) -> Proc:
    """Start a process and wait until ``ready_url`` answers; stopped by pid if it never does."""
    proc = Proc(name, argv, log_dir, env, cwd)
    try:
        wait_http(ready_url, proc, timeout)
    except BaseException:
        proc.stop()
        raise
    return proc


@contextlib.contextmanager
def running(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    ready_url: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[Proc]:
    """Start a process, wait until ``ready_url`` answers, and stop it on exit (also on failure)."""
    proc = start_ready(name, argv, log_dir, ready_url, env, timeout)
    try:
        yield proc
    finally:
        proc.stop()
