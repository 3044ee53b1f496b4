"""S3Store without a server: error mapping and what needs no network."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from sidecar.config import StoreConfig
from sidecar.errors import StoreConfigError, StoreError
from sidecar.store.s3 import S3Store, map_error


def _client_error(code: str, status: int, op: str = "PutObject") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} message"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


@pytest.mark.parametrize(
    ("exc", "reason", "retryable"),
    [
        (_client_error("SlowDown", 503), "throttled", True),
        (_client_error("Throttling", 400), "throttled", True),
        (_client_error("RequestLimitExceeded", 400), "throttled", True),
        (_client_error("ServiceUnavailable", 503), "throttled", True),
        (_client_error("TooManyRequests", 429), "throttled", True),
        (_client_error("InternalError", 500), "server_error", True),
        (_client_error("BadGateway", 502), "server_error", True),
        (_client_error("BadDigest", 400), "checksum", True),
        (_client_error("RequestTimeout", 400), "timeout", True),
        (_client_error("NoSuchKey", 404, "GetObject"), "not_found", False),
        (_client_error("404", 404, "HeadObject"), "not_found", False),
        (_client_error("ExpiredToken", 400), "client_error", True),
        (_client_error("InvalidArgument", 400), "client_error", False),
        (_client_error("EntityTooLarge", 400), "client_error", False),
        (EndpointConnectionError(endpoint_url="http://x"), "connection", True),
        (ConnectionClosedError(endpoint_url="http://x"), "connection", True),
        (aiohttp.ClientPayloadError("cut"), "connection", True),
        (ConnectionResetError("reset"), "connection", True),
        (ReadTimeoutError(endpoint_url="http://x"), "timeout", True),
        (ConnectTimeoutError(endpoint_url="http://x"), "timeout", True),
        (TimeoutError(), "timeout", True),
        (ParamValidationError(report="bad"), "client_error", False),
        (OSError("disk"), "io", True),
    ],
)
def test_map_error(exc: BaseException, reason: str, retryable: bool) -> None:
    err = map_error(exc, op="put", where="s3://b/k at http://x", bucket="b")
    assert type(err) is StoreError
    assert (err.reason, err.retryable) == (reason, retryable)
    assert str(err).startswith("put s3://b/k at http://x: ")


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (_client_error("NoSuchBucket", 404), "bucket 'b' does not exist"),
        (_client_error("404", 404, "ListObjectsV2"), "bucket 'b' does not exist"),
        (_client_error("AccessDenied", 403), "access denied"),
        (_client_error("403", 403, "HeadObject"), "access denied"),
        (_client_error("InvalidAccessKeyId", 403), "access key id is unknown"),
        (_client_error("SignatureDoesNotMatch", 403), "secret access key is probably wrong"),
        (NoCredentialsError(), "no usable AWS credentials"),
        # Answers without an S3 error document (botocore falls back to the status as the code):
        # an HTTP server that is not S3. Retrying cannot change that.
        (_client_error("501", 501), "does not look like an S3 API"),
        (_client_error("405", 405), "does not look like an S3 API"),
        (_client_error("NotImplemented", 501), "not implemented by the endpoint"),
    ],
)
def test_map_error_config(exc: BaseException, words: str) -> None:
    err = map_error(exc, op="check", where="s3://b/p at http://x", bucket="b")
    assert isinstance(err, StoreConfigError)
    assert not err.retryable
    assert words in str(err)


async def test_no_credentials_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # and no traffic to 169.254.169.254
    config = StoreConfig(endpoint_url="http://127.0.0.1:9", path_style=True)
    store = S3Store(bucket="b", prefix="p", config=config, uri="s3://b/p")
    try:
        with pytest.raises(StoreConfigError) as info:
            await store.check()
        assert "no usable AWS credentials" in str(info.value)
    finally:
        await store.close()


@pytest.mark.parametrize("endpoint", ["not a url", "ftp://host"])
async def test_malformed_endpoint_is_a_config_error(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    store = S3Store(
        bucket="b", prefix="p", config=StoreConfig(endpoint_url=endpoint), uri="s3://b/p"
    )
    try:
        with pytest.raises(StoreConfigError) as info:
            await store.check()
        assert endpoint in str(info.value)
    finally:
        await store.close()


def test_constructor_bounds() -> None:
    config = StoreConfig()
    with pytest.raises(ValueError):
        S3Store(bucket="b", prefix="", config=config, uri="s3://b", page_size=0)
    with pytest.raises(ValueError):
        S3Store(bucket="b", prefix="", config=config, uri="s3://b", part_size_bytes=1024)


class _Sent(Exception):
    """Raised by a before-send hook: the request was built and signed, and goes nowhere."""


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "https://s3.example.com"])
async def test_bodies_are_not_hashed_for_the_signature_but_carry_a_signed_md5(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHA-256 of a whole segment would run on the event loop; Content-MD5 (hashed off the loop,
    part of the signed headers) is what protects the body instead."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    config = StoreConfig(destination="s3://b/p", endpoint_url=endpoint, path_style=True)
    store = S3Store(bucket="b", prefix="p", config=config, uri="s3://b/p")
    await store.open()
    seen: dict[str, str] = {}

    def before_send(request: object, **_: object) -> None:
        headers = request.headers  # type: ignore[attr-defined]
        seen.update({k.lower(): v.decode() if isinstance(v, bytes) else v
                     for k, v in headers.items()})  # fmt: skip
        raise _Sent

    store.client.meta.events.register("before-send.s3.PutObject", before_send)
    try:
        with pytest.raises(StoreError):
            await store.put("k.jsonl", b"x" * 1000, content_type="application/jsonl")
    finally:
        await store.close()
    assert seen["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert seen["content-md5"] == "OYUz1IER6fZksfZMsQxLYw=="  # base64 MD5 of the body
    assert "content-md5" in seen["authorization"].split("SignedHeaders=")[1].split(",")[0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_bare_5xx_at_the_check_stays_transient(status: int) -> None:
    # A load balancer in front of S3 answers these without S3's XML: worth another attempt.
    err = map_error(
        _client_error(str(status), status), op="write check", where="s3://b/p", bucket="b"
    )
    assert not isinstance(err, StoreConfigError)
    assert err.retryable
