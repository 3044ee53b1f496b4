"""The processes under test: the origin nginx, the nginx reverse proxy and the sidecar.

The origin is nginx serving fixed CSV files. nginx's static module answers POST with 405, so the
origin turns that into the file with ``error_page 405 =200 $uri``: the internal redirect is a GET of
the same URI and the request body is read and discarded, with keep-alive intact.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from procs import Pinning

from bench.common import (
    children,
    cpu_seconds,
    nginx_http_common,
    nginx_main,
    start_nginx,
)
from bench.common import (
    start_origin as start_origin_nginx,
)
from harness.procs import Proc, free_port, start_ready

REPO = Path(__file__).resolve().parents[2]
_QUEUE_GAUGE = "modeltap_sidecar_capture_queue_records"
_SPOOLED = 'modeltap_sidecar_capture_records_total{outcome="spooled"}'
_DROPPED = 'modeltap_sidecar_capture_records_total{outcome="dropped_queue_full"}'
_PENDING = "modeltap_sidecar_upload_pending_segments"


@dataclass
class Target:
    """Something wrk sends requests to, and the process whose CPU time is charged to it."""

    name: str
    base_url: str
    cpu_pid: int | None
    admin_url: str | None = None


def proxy_conf(prefix: Path, port: int, upstream_port: int) -> str:
    return f"""{nginx_main(prefix, "nginx-proxy")}
http {{
{nginx_http_common(prefix, "nginx-proxy")}
    # Large enough that 100 KB requests and responses never touch a temp file.
    proxy_buffer_size 16k;
    proxy_buffers 16 16k;
    upstream origin {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def csv_body(size: int) -> bytes:
    """``size`` bytes of CSV rows, ending in a newline."""
    row = b"5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3\n"
    body = (row * (size // len(row) + 1))[: size - 1]
    return body + b"\n"


def write_bodies(www: Path, sizes: dict[str, int]) -> None:
    """One file ``<label>.csv`` per body size; the origin answers with the same size it got."""
    www.mkdir(parents=True, exist_ok=True)
    for label, size in sizes.items():
        (www / f"{label}.csv").write_bytes(csv_body(size))


def nginx_worker(master: Proc, timeout: float = 10.0) -> int:
    """The single worker's pid (the process that does the work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children(master.pid)
        if found:
            return found[0]
        time.sleep(0.05)
    raise RuntimeError(f"{master.name}: no worker process:\n{master.log()[-3000:]}")


def start_origin(prefix: Path, www: Path, probe: str, pin: Pinning) -> tuple[Proc, Target]:
    proc, base = start_origin_nginx(prefix, www, probe, argv_prefix=pin.prefix(pin.load_cpu))
    return proc, Target("direct", base, nginx_worker(proc))


def start_nginx_proxy(prefix: Path, upstream: str, probe: str, pin: Pinning) -> tuple[Proc, Target]:
    port = free_port()
    upstream_port = int(upstream.rsplit(":", 1)[1])
    conf = proxy_conf(prefix, port, upstream_port)
    cpu = pin.prefix(pin.proxy_cpu)
    proc = start_nginx("nginx-proxy", conf, prefix, f"/{probe}", port, argv_prefix=cpu)
    return proc, Target("nginx", f"http://127.0.0.1:{port}", nginx_worker(proc))


def start_floor(prefix: Path, upstream: str, probe: str, pin: Pinning) -> tuple[Proc, Target]:
    """The bare Python forwarder (``floor.py``), pinned like the sidecar."""
    port = free_port()
    host, upstream_port = upstream.removeprefix("http://").rsplit(":", 1)
    argv = [*pin.prefix(pin.proxy_cpu), sys.executable, str(Path(__file__).with_name("floor.py")),
            host, upstream_port, str(port)]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    proc = start_ready("floor", argv, prefix, f"{base}/{probe}", cwd=REPO)
    return proc, Target("python floor", base, proc.pid)


def start_sidecar(
    prefix: Path,
    upstream: str,
    percent: float,
    pin: Pinning,
    tree: Path = REPO,
    label: str = "",
    writer_nice: int | None = None,
) -> tuple[Proc, Target, Path]:
    """A sidecar capturing ``percent`` % to its own spool and file store; returns the store dir.

    ``tree`` is the source tree it runs from: the checkout (pure Python) or ``make compiled``'s
    copy (the request path compiled, as the image ships it). ``label`` tells the two apart.
    ``writer_nice`` sets ``spool.writer_nice`` (default: the sidecar's own).
    """
    name = f"sidecar-{percent:g}{'-' + label if label else ''}"
    port, admin = free_port(), free_port()
    spool, store = prefix / f"{name}-spool", prefix / f"{name}-store"
    argv = [
        *pin.prefix(pin.proxy_cpu),
        sys.executable,
        "-m",
        "sidecar",
        *("--upstream.url", upstream),
        *("--server.host", "127.0.0.1", "--server.port", str(port)),
        *("--server.admin-host", "127.0.0.1", "--server.admin-port", str(admin)),
        *("--spool.dir", str(spool), "--store.destination", f"file://{store}"),
        *("--capture.sample-percent", f"{percent:g}"),
    ]
    if writer_nice is not None:
        argv += ["--spool.writer-nice", str(writer_nice)]
    admin_url = f"http://127.0.0.1:{admin}"
    proc = start_ready(name, argv, prefix, f"{admin_url}/readyz", cwd=tree)
    title = f"sidecar {percent:g}%{f' ({label})' if label else ''}"
    target = Target(title, f"http://127.0.0.1:{port}", proc.pid, admin_url)
    return proc, target, store


def scrape(admin_url: str) -> dict[str, float]:
    """The sidecar's metrics as ``{'name{labels}': value}``."""
    with urllib.request.urlopen(f"{admin_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


@dataclass(frozen=True)
class CaptureCounts:
    spooled: float
    dropped: float


def settle(admin_url: str, pid: int, timeout: float = 60.0) -> CaptureCounts:
    """Wait until the sidecar is quiet: capture queue empty, nothing waiting for upload, the spool
    counter still and (almost) no CPU used for a quarter second. Returns the capture counters."""
    deadline = time.monotonic() + timeout
    last: tuple[float, float] | None = None
    while True:
        values = scrape(admin_url)
        spooled, cpu = values.get(_SPOOLED, 0.0), cpu_seconds(pid)
        busy = values.get(_QUEUE_GAUGE, 0.0) or values.get(_PENDING, 0.0)
        quiet = last is not None and spooled == last[0] and cpu - last[1] <= 0.02
        if (quiet and not busy) or time.monotonic() > deadline:
            return CaptureCounts(spooled, values.get(_DROPPED, 0.0))
        last = (spooled, cpu)
        time.sleep(0.25)


def delete_stored(store: Path) -> None:
    """Delete the objects the sidecar's uploader stored, so 100 % capture runs do not fill the disk.

    Only finished objects (``*.jsonl``) go; directories and in-flight temporary files stay.
    """
    for obj in store.rglob("*.jsonl"):
        obj.unlink(missing_ok=True)
