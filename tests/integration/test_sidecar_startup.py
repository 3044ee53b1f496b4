"""Start-up faults through the real CLI: an unusable spool dir, an endpoint that is not S3, a store
that is busy while the sidecar starts. Each ends in one line and exit 2, or in a started sidecar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.faulty_proxy import arm, injected
from harness.procs import PYTHON, Proc, free_port, wait_http
from harness.seaweed import SeaweedS3
from tests.conftest import SidecarProc

pytestmark = pytest.mark.integration


def run_sidecar(tmp_path: Path, name: str, *flags: str, timeout: float = 60) -> tuple[int, str]:
    """Run the sidecar CLI until it exits (it must, here); returns (status, its output)."""
    proc = Proc(
        name,
        [PYTHON, "-m", "sidecar", "--server.host", "127.0.0.1", "--server.port", str(free_port()),
         "--server.admin-host", "127.0.0.1", "--server.admin-port", str(free_port()), *flags],
        tmp_path,
    )  # fmt: skip
    try:
        status = proc.wait(timeout)
    finally:
        proc.stop()
    return status, proc.log()


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("modeltap sidecar:")]


def test_a_spool_dir_that_cannot_be_created_is_one_line_and_exit_2(
    upstream: str, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    status, log = run_sidecar(
        tmp_path, "sidecar-badspool", "--upstream.url", upstream,
        "--spool.dir", str(a_file / "spool"), "--store.destination", f"file://{tmp_path}/store",
    )  # fmt: skip
    assert status == 2, log
    (line,) = error_lines(log)
    assert line.startswith("modeltap sidecar: configuration error: spool.dir=")
    assert str(a_file / "spool") in line and "Not a directory" in line
    assert "Traceback" not in log


@pytest.fixture
def not_s3(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server that is not S3: Python's http.server answers PUT with 501."""
    port = free_port()
    (tmp_path / "www").mkdir()
    proc = Proc(
        "http-server",
        [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(tmp_path / "www")],
        tmp_path,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def s3_flags(bucket: str, endpoint: str, region: str) -> list[str]:
    return [
        "--store.destination", f"s3://{bucket}/captures", "--store.endpoint-url", endpoint,
        "--store.path-style", "true", "--store.region", region,
        "--store.retry-base-seconds", "0.05", "--store.check-attempts", "3",
    ]  # fmt: skip


def test_an_endpoint_that_is_not_s3_fails_at_once_with_one_line(
    upstream: str, s3_env: SeaweedS3, not_s3: str, tmp_path: Path
) -> None:
    status, log = run_sidecar(
        tmp_path, "sidecar-nots3", "--upstream.url", upstream, "--spool.dir", str(tmp_path / "s"),
        *s3_flags("bucket", not_s3, s3_env.region),
    )  # fmt: skip
    assert status == 2, log
    (line,) = error_lines(log)
    assert line.startswith("modeltap sidecar: store error:")
    assert not_s3 in line and "HTTP 501" in line and "does not look like an S3 API" in line
    assert "attempt 2" not in log  # no retries: nothing a retry could change
    assert "Traceback" not in log


def test_slowdown_during_the_start_up_check_is_retried_then_the_sidecar_serves(
    upstream: str,
    s3_env: SeaweedS3,
    s3_bucket: str,
    faulty_s3: str,
    start_sidecar: Callable[..., SidecarProc],
) -> None:
    arm(faulty_s3, status=503, code="SlowDown", count=2, method="PUT")
    sc = start_sidecar(upstream, *s3_flags(s3_bucket, faulty_s3, s3_env.region))
    assert injected(faulty_s3) == 2  # two refused probes, the third went through
    assert sc.proc.alive()
    assert sc.proc.stop() == 0


def test_a_store_busy_through_every_start_up_attempt_is_one_line_and_exit_2(
    upstream: str, s3_env: SeaweedS3, s3_bucket: str, faulty_s3: str, tmp_path: Path
) -> None:
    arm(faulty_s3, status=503, code="SlowDown", count=100, method="PUT")
    status, log = run_sidecar(
        tmp_path, "sidecar-slowdown", "--upstream.url", upstream,
        "--spool.dir", str(tmp_path / "s"), *s3_flags(s3_bucket, faulty_s3, s3_env.region),
    )  # fmt: skip
    assert status == 2, log
    assert injected(faulty_s3) == 3  # store.check-attempts
    (line,) = error_lines(log)
    assert line.startswith("modeltap sidecar: store error:")
    assert faulty_s3 in line and "SlowDown" in line and "after 3 attempts" in line
    assert "Traceback" not in log
