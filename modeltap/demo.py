"""``modeltap demo`` (what ``make run`` starts): the whole loop on the embedded defaults.

It builds a baseline from the iris training data, starts the demo iris model server, the sidecar
in front of it (capturing to a local directory) and the analyzer on a short schedule as child
processes, and sends traffic whose ``petal_length`` drifts after ``--drift-after`` seconds, so
drift shows on the analyzer's /metrics and in its HTML report within minutes. It prints the URLs
and stops every child by pid on Ctrl-C or SIGTERM.

``--llm`` runs the same loop around ``modeltap demo-llm``, an OpenAI-compatible streaming server:
the traffic is chat completions (mostly streamed, with usage) whose prompts grow longer and ask
for refused topics more often after ``--drift-after`` seconds; the sidecar's
``modeltap_sidecar_genai_*`` metrics and the records' ``modeltap.genai`` fields show it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


STOP_GRACE_SECONDS = 20.0


def _name(p: subprocess.Popen[bytes]) -> str:
    """``sidecar``, ``modeltap monitor``...: the words after ``python -m``."""
    args = [str(a) for a in p.args] if isinstance(p.args, list) else [str(p.args)]
    return " ".join(a for a in args[2:4] if not a.startswith("-"))


def _busy_port(args: argparse.Namespace, names: Sequence[str]) -> bool:
    """True (and one line saying which flag to change) when a port ``--<name>-port`` is taken."""
    for name in names:
        port = getattr(args, f"{name}_port")
        if not _port_free(args.host, port):
            print(
                f"modeltap demo: port {port} on {args.host} is in use; "
                f"choose another with --{name}-port",
                file=sys.stderr,
            )
            return True
    return False


def _supervise(
    procs: list[subprocess.Popen[bytes]], stop: threading.Event, duration: float
) -> bool:
    """Wait for ``stop`` or ``duration`` (0: forever); False as soon as a component exits."""
    deadline = time.monotonic() + duration if duration > 0 else None
    while not stop.is_set():
        if any(p.poll() is not None for p in procs):
            print("modeltap demo: a component exited; stopping", file=sys.stderr)
            return False
        if deadline is not None and time.monotonic() >= deadline:
            break
        stop.wait(0.5)
    return True


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child, give them one shared grace period, then SIGKILL whoever is left.

    A child that needs the SIGKILL is named on stderr: a component that does not stop on SIGTERM
    is a bug, and the name says where to look.
    """
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for p in reversed(procs):
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(
                f"modeltap demo: {_name(p)} (pid {p.pid}) did not stop "
                f"within {STOP_GRACE_SECONDS:g}s of SIGTERM; killing it",
                file=sys.stderr,
                flush=True,
            )
            p.kill()
            p.wait(10)


DRIFTED_FEATURE = "petal_length"


def _iris() -> tuple[list[list[float]], list[int]]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return [[float(v) for v in row] for row in data.data], [int(t) for t in data.target]


def _traffic(url: str, interval: float, drift_at: float | None, stop: threading.Event) -> None:
    """Send iris rows as CSV and JSON, alternating, until ``stop`` is set.

    Rows are drawn from the training data itself, so before ``drift_at`` (a monotonic time) the
    traffic has the baseline's distribution and no test should fire; from then on
    ``petal_length`` is stretched by half, the kind of unit or pipeline change drift monitoring
    exists to catch.
    """
    rows, _ = _iris()
    rng = random.Random(0)
    n = 0
    while not stop.wait(interval):
        row = list(rng.choice(rows))
        if drift_at is not None and time.monotonic() >= drift_at:
            row[2] = round(row[2] * 1.5, 1)
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


LLM_TOPICS = ("the weather", "a sorting algorithm", "the history of tea", "a haiku about rain")
LLM_REFUSED = ("a password reset trick", "a malware sample", "a weapon design")
LLM_CONTEXT = "Here is some context from the knowledge base that the assistant should consider. "


def _llm_prompt(rng: random.Random, drifted: bool) -> str:
    """A user prompt: after the drift, prompts carry more retrieved context and ask for refused
    topics more often (what LLM monitoring watches: prompt length, refusals)."""
    refused = rng.random() < (0.4 if drifted else 0.05)
    topic = rng.choice(LLM_REFUSED if refused else LLM_TOPICS)
    context = LLM_CONTEXT * rng.randint(4, 10) if drifted else LLM_CONTEXT * rng.randint(0, 2)
    return f"{context}Tell me about {topic}."


def _llm_traffic(base: str, interval: float, drift_at: float | None, stop: threading.Event) -> None:
    """Chat completions, mostly streamed (with usage), some whole, until ``stop`` is set."""
    rng = random.Random(0)
    n = 0
    while not stop.wait(interval):
        drifted = drift_at is not None and time.monotonic() >= drift_at
        stream = n % 4 != 3
        doc: dict[str, object] = {
            "model": "demo-llm",
            "messages": [{"role": "user", "content": _llm_prompt(rng, drifted)}],
            "max_tokens": rng.choice((16, 48, 64)),
            "temperature": 0.7,
            "stream": stream,
        }
        if stream:
            doc["stream_options"] = {"include_usage": True}
        req = urllib.request.Request(
            f"{base}/v1/chat/completions",
            data=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json", "X-Inference-Id": f"demo-llm-{n}"},
            method="POST",
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
        n += 1


def _prepare_analyzer(work: Path, captures: Path, reports: Path, args: argparse.Namespace) -> Path:
    """Build the baseline from the training data and write the analyzer's config."""
    from modeltap.demo_model import FEATURES

    rows, _ = _iris()
    train = work / "train" / "iris.csv"
    train.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(FEATURES), *(",".join(f"{v:g}" for v in row) for row in rows)]
    train.write_text("\n".join(lines) + "\n")
    baseline = work / "baseline"
    done = subprocess.run(
        [sys.executable, "-m", "modeltap", "baseline", str(train), "-o", str(baseline),
         "--progress", "never"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"modeltap demo: building the baseline failed:\n{done.stderr.decode()}")
    config = work / "monitor.toml"
    config.write_text(
        f"""[monitor]
captures = "file://{captures}"
reports = "file://{reports}"
window_minutes = {args.window_seconds / 60:g}
interval_seconds = {args.monitor_interval:g}
host = "{args.host}"
port = {args.analyzer_port}

[[endpoints]]
name = "iris"
baseline = "file://{baseline}"
"""
    )
    return config


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
    parser.add_argument("--analyzer-port", type=int, default=9091)
    parser.add_argument(
        "--drift-after",
        type=float,
        default=90.0,
        help=f"seconds until the traffic's {DRIFTED_FEATURE} drifts; 0 = never",
    )
    parser.add_argument(
        "--monitor-interval", type=float, default=15.0, help="seconds between analyzer runs"
    )
    parser.add_argument(
        "--window-seconds", type=float, default=60.0, help="traffic each analyzer run covers"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)"
    )
    parser.add_argument(
        "--llm",
        action="store_true",
        help="an OpenAI-compatible streaming LLM (modeltap demo-llm) instead of the iris model: "
        "the sidecar's gen_ai metrics and records; prompts grow longer and refusals rise after "
        "--drift-after (no analyzer run in this mode)",
    )
    parser.add_argument(
        "--token-seconds",
        type=float,
        default=0.02,
        help="with --llm: the demo LLM's delay between streamed tokens",
    )
    args = parser.parse_args(argv)
    if args.llm:
        return _main_llm(args)

    if _busy_port(args, ("proxy", "admin", "model", "analyzer")):
        return 2
    work = args.dir.resolve()
    spool, captures, reports = work / "spool", work / "captures", work / "reports"
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
        config = _prepare_analyzer(work, captures, reports, args)
        analyzer = subprocess.Popen(
            [py, "-m", "modeltap", "monitor", "--config", str(config)], env=env
        )
        procs.append(analyzer)
        analyzer_url = f"http://{args.host}:{args.analyzer_port}"
        _wait_ready(f"{analyzer_url}/healthz", analyzer, "analyzer")
        proxy = f"http://{args.host}:{args.proxy_port}"
        traffic = f"every {args.traffic_interval:g}s" if args.traffic_interval > 0 else "off"
        drift = (
            f"{DRIFTED_FEATURE} drifts after {args.drift_after:g}s"
            if args.drift_after > 0
            else "no drift"
        )
        drift_at = time.monotonic() + args.drift_after if args.drift_after > 0 else None
        print(
            f"""
modeltap demo is running.
  model server (iris)   http://{args.host}:{args.model_port}/invocations
  send requests here    {proxy}/invocations   (the sidecar, capturing {args.sample_percent:g}%)
      curl -s -H 'Content-Type: text/csv' --data-binary '5.1,3.5,1.4,0.2' {proxy}/invocations
      curl -s -H 'Content-Type: application/json' -d '{{"instances": [[6.7, 3.0, 5.2, 2.3]]}}' {proxy}/invocations
  sidecar metrics       http://{args.host}:{args.admin_port}/metrics
  captured files        {captures}/iris/AllTraffic/yyyy/mm/dd/hh/*.jsonl  (sealed every 10 s)
  demo traffic          {traffic}; {drift}
  analyzer metrics      {analyzer_url}/metrics   (a run every {args.monitor_interval:g}s over the last {args.window_seconds:g}s)
      curl -s {analyzer_url}/metrics | grep feature_drift_detected
  analyzer reports      {analyzer_url}/reports/iris/   (HTML, also under {reports})
Press Ctrl-C to stop.
""",
            flush=True,
        )
        if args.traffic_interval > 0:
            threading.Thread(
                target=_traffic,
                args=(f"{proxy}/invocations", args.traffic_interval, drift_at, stop),
                daemon=True,
            ).start()
        if not _supervise(procs, stop, args.duration):
            return 1
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        _stop(procs)
    print(f"modeltap demo stopped; captured files are in {captures}")
    return 0


def _main_llm(args: argparse.Namespace) -> int:
    """``modeltap demo --llm``: demo-llm, the sidecar in front of it, streamed chat traffic."""
    if _busy_port(args, ("proxy", "admin", "model")):
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
                "demo-llm",
                "--host",
                args.host,
                "--port",
                str(args.model_port),
                "--token-seconds",
                str(args.token_seconds),
            ],
            env=env,
        )
        procs.append(model)
        _wait_ready(f"http://{args.host}:{args.model_port}/health", model, "demo LLM")
        sidecar = subprocess.Popen(
            [py, "-m", "sidecar",
             "--upstream.url", f"http://{args.host}:{args.model_port}",
             "--server.host", args.host, "--server.port", str(args.proxy_port),
             "--server.admin-host", args.host, "--server.admin-port", str(args.admin_port),
             "--capture.endpoint-name", "llm", "--capture.sample-percent", str(args.sample_percent),
             "--redact.patterns", "email,phone,card",
             "--spool.dir", str(spool), "--spool.max-segment-age-seconds", "10",
             "--store.destination", f"file://{captures}"],
            env=env,
        )  # fmt: skip
        procs.append(sidecar)
        _wait_ready(f"http://{args.host}:{args.admin_port}/readyz", sidecar, "sidecar")
        proxy = f"http://{args.host}:{args.proxy_port}"
        traffic = f"every {args.traffic_interval:g}s" if args.traffic_interval > 0 else "off"
        drift = (
            f"prompts grow and refusals rise after {args.drift_after:g}s"
            if args.drift_after > 0
            else "no drift"
        )
        drift_at = time.monotonic() + args.drift_after if args.drift_after > 0 else None
        print(
            f"""
modeltap demo (LLM) is running.
  model server          http://{args.host}:{args.model_port}/v1/chat/completions  (modeltap demo-llm)
  send requests here    {proxy}/v1   (the sidecar, capturing {args.sample_percent:g}%; OpenAI base URL)
      curl -sN {proxy}/v1/chat/completions -H 'Content-Type: application/json' \\
        -d '{{"model": "demo-llm", "stream": true, "stream_options": {{"include_usage": true}}, "messages": [{{"role": "user", "content": "Hello there"}}]}}'
  sidecar metrics       http://{args.host}:{args.admin_port}/metrics
      curl -s http://{args.host}:{args.admin_port}/metrics | grep modeltap_sidecar_genai_
  captured files        {captures}/llm/AllTraffic/yyyy/mm/dd/hh/*.jsonl  (modeltap.genai: completion, usage)
  demo traffic          {traffic}; {drift}
Press Ctrl-C to stop.
""",
            flush=True,
        )
        if args.traffic_interval > 0:
            threading.Thread(
                target=_llm_traffic,
                args=(proxy, args.traffic_interval, drift_at, stop),
                daemon=True,
            ).start()
        if not _supervise(procs, stop, args.duration):
            return 1
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        _stop(procs)
    print(f"modeltap demo stopped; captured files are in {captures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
