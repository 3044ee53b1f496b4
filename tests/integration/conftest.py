"""Fixtures that start real processes on 127.0.0.1; every one is stopped by pid at teardown."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.procs import PYTHON, Proc, free_port, wait_http
from harness.seaweed import SeaweedS3
from sidecar.config import StoreConfig


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS ``weed mini`` per test session, auth on (``ADMIN`` and ``READER``).

    A missing ``weed`` binary is an error, not a skip. A test may ``stop()`` and ``start()`` it
    (same dir and ports); it must leave it running.
    """
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def s3_env(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SeaweedS3:
    """The admin identity's keys in the environment, for this test only (botocore's env chain).

    Every other ``AWS_*`` variable is removed and the AWS config files point nowhere, so a
    developer's profile, endpoint override or instance metadata cannot leak into the test.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.admin.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.admin.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", seaweed.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return seaweed


@pytest.fixture
def s3_bucket(s3_env: SeaweedS3) -> Iterator[str]:
    """A fresh, uniquely named, empty bucket; removed (with its objects) afterwards."""
    name = s3_env.create_bucket()
    yield name
    if s3_env.running:
        s3_env.delete_bucket(name)


@pytest.fixture
def s3_store_config(s3_env: SeaweedS3, s3_bucket: str) -> StoreConfig:
    """A StoreConfig pointing at ``s3://<s3_bucket>/captures`` on the test SeaweedFS."""
    return StoreConfig(
        destination=f"s3://{s3_bucket}/captures",
        region=s3_env.region,
        endpoint_url=s3_env.endpoint_url,
        path_style=True,
    )


@pytest.fixture
def faulty_s3(s3_env: SeaweedS3, tmp_path: Path) -> Iterator[str]:
    """The fault injector (harness.faulty_proxy) in front of the real SeaweedFS; its URL."""
    port = free_port()
    proc = Proc(
        "faulty-s3",
        [PYTHON, "-m", "harness.faulty_proxy", str(port), s3_env.endpoint_url],
        tmp_path,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/__fault__", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()
