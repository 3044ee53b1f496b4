"""``modeltap demo`` (what ``make run`` starts): the whole loop on the embedded defaults.

It starts the demo iris model server and the sidecar in front of it as child processes, capturing
to a local directory, sends a trickle of sample traffic so captured files appear, prints where to
look, and stops every child by pid on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"modeltap demo: {name} exited with status {proc.returncode}; see its log above"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"modeltap demo: {name} not ready at {url} after {timeout:.0f}s")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _traffic(url: str, interval: float, stop: threading.Event) -> None:
    """Send iris-like rows as CSV and JSON, alternating, until ``stop`` is set."""
    rng = random.Random(0)
    n = 0
    while not stop.wait(interval):
        row = [
            round(rng.gauss(m, s), 1) for m, s in ((5.8, 0.8), (3.0, 0.4), (3.8, 1.7), (1.2, 0.8))
        ]
        if n % 2:
            body, ctype = ("{" + f'"instances": [{row}]' + "}").encode(), "application/json"
        else:
            body, ctype = ",".join(map(str, row)).encode(), "text/csv"
        req = urllib.request.Request(
            url,
            data=body,
            headers={"Content-Type": ctype, "X-Inference-Id": f"demo-{n}"},
            method="POST",
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(req, timeout=5).close()
        n += 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modeltap demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dir", type=Path, default=Path("run"), help="working directory (spool, captures)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--proxy-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9090)
    parser.add_argument("--model-port", type=int, default=8081)
    parser.add_argument("--sample-percent", type=float, default=100.0)
    parser.add_argument(
        "--traffic-interval",
        type=float,
        default=0.5,
        help="seconds between demo requests; 0 = none",
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)"
    )
    args = parser.parse_args(argv)

    for name, port in (("--proxy-port", args.proxy_port), ("--admin-port", args.admin_port),
                       ("--model-port", args.model_port)):  # fmt: skip
        if not _port_free(args.host, port):
            print(
                f"modeltap demo: port {port} on {args.host} is in use; choose another with {name}",
                file=sys.stderr,
            )
            return 2
    work = args.dir.resolve()
    spool, captures = work / "spool", work / "captures"
    captures.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTAP_SIDECAR_")}
    py = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        model = subprocess.Popen(
            [
                py,
                "-m",
                "modeltap",
                "demo-model",
                "--host",
                args.host,
                "--port",
                str(args.model_port),
            ],
            env=env,
        )
        procs.append(model)
        _wait_ready(f"http://{args.host}:{args.model_port}/ping", model, "demo model")
        sidecar = subprocess.Popen(
            [py, "-m", "sidecar",
             "--upstream.url", f"http://{args.host}:{args.model_port}",
             "--server.host", args.host, "--server.port", str(args.proxy_port),
             "--server.admin-host", args.host, "--server.admin-port", str(args.admin_port),
             "--capture.endpoint-name", "iris", "--capture.sample-percent", str(args.sample_percent),
             "--spool.dir", str(spool), "--spool.max-segment-age-seconds", "10",
             "--store.destination", f"file://{captures}"],
            env=env,
        )  # fmt: skip
        procs.append(sidecar)
        _wait_ready(f"http://{args.host}:{args.admin_port}/readyz", sidecar, "sidecar")
        proxy = f"http://{args.host}:{args.proxy_port}"
        traffic = f"every {args.traffic_interval:g}s" if args.traffic_interval > 0 else "off"
        print(
            f"""
modeltap demo is running.
  model server (iris)   http://{args.host}:{args.model_port}/invocations
  send requests here    {proxy}/invocations   (the sidecar, capturing {args.sample_percent:g}%)
      curl -s -H 'Content-Type: text/csv' --data-binary '5.1,3.5,1.4,0.2' {proxy}/invocations
      curl -s -H 'Content-Type: application/json' -d '{{"instances": [[6.7, 3.0, 5.2, 2.3]]}}' {proxy}/invocations
  sidecar metrics       http://{args.host}:{args.admin_port}/metrics
  captured files        {captures}/iris/AllTraffic/yyyy/mm/dd/hh/*.jsonl  (sealed every 10 s)
  demo traffic          {traffic}
Press Ctrl-C to stop.
""",
            flush=True,
        )
        if args.traffic_interval > 0:
            threading.Thread(
                target=_traffic,
                args=(f"{proxy}/invocations", args.traffic_interval, stop),
                daemon=True,
            ).start()
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while not stop.is_set():
            if any(p.poll() is not None for p in procs):
                print("modeltap demo: a component exited; stopping", file=sys.stderr)
                return 1
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        _stop(procs)
    print(f"modeltap demo stopped; captured files are in {captures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
