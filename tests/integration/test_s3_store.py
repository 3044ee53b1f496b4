"""S3Store against a real SeaweedFS (``weed mini``, auth on)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.seaweed import SeaweedS3, free_port
from modeltap.core.errors import StoreConfigError, StoreError
from modeltap.core.store import open_store
from modeltap.core.store.s3 import MIB, PROBE_KEY, S3Store
from sidecar.config import StoreConfig

pytestmark = pytest.mark.integration

StoreFactory = Callable[..., S3Store]


@pytest.fixture
async def make_store(s3_store_config: StoreConfig) -> AsyncIterator[StoreFactory]:
    """Build S3Stores on the test bucket (prefix ``captures``); all are closed afterwards."""
    stores: list[S3Store] = []

    def make(config: StoreConfig | None = None, **kwargs: Any) -> S3Store:
        cfg = config or s3_store_config
        store = S3Store(
            bucket=kwargs.pop("bucket", cfg.destination.split("/")[2]),
            prefix=kwargs.pop("prefix", "captures"),
            config=cfg,
            uri=cfg.destination,
            **kwargs,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


def _with(config: StoreConfig, **changes: Any) -> StoreConfig:
    return dataclasses.replace(config, **changes)


async def _head(seaweed: SeaweedS3, bucket: str, key: str) -> dict[str, Any]:
    def head() -> dict[str, Any]:
        with contextlib.closing(seaweed.client()) as client:
            return dict(client.head_object(Bucket=bucket, Key=key))

    return await asyncio.to_thread(head)


async def _keys(seaweed: SeaweedS3, bucket: str) -> list[str]:
    def keys() -> list[str]:
        with contextlib.closing(seaweed.client()) as client:
            page = client.list_objects_v2(Bucket=bucket)
            return [o["Key"] for o in page.get("Contents", [])]

    return await asyncio.to_thread(keys)


async def _collect(store: S3Store, prefix: str = "") -> list[tuple[str, int]]:
    return [(info.key, info.size) async for info in store.list(prefix)]


async def test_open_store_builds_s3_store(s3_store_config: StoreConfig, s3_bucket: str) -> None:
    store = open_store(f"s3://{s3_bucket}/a/b/", s3_store_config)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (s3_bucket, "a/b")
    await store.check()
    await store.close()


async def test_put_get_byte_identical(
    make_store: StoreFactory, s3_env: SeaweedS3, s3_bucket: str
) -> None:
    store = make_store()
    await store.check()
    data = bytes(range(256)) * 100 + b"\x00\r\n"
    await store.put(
        "ep/AllTraffic/2026/11/23/09/seg.jsonl.gz",
        data,
        content_type="application/jsonlines",
        content_encoding="gzip",
    )
    assert await store.get("ep/AllTraffic/2026/11/23/09/seg.jsonl.gz") == data
    head = await _head(s3_env, s3_bucket, "captures/ep/AllTraffic/2026/11/23/09/seg.jsonl.gz")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/jsonlines"
    assert head["ContentEncoding"] == "gzip"
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    # check() cleaned up its probe; the object sits under the prefix with one slash.
    assert await _keys(s3_env, s3_bucket) == ["captures/ep/AllTraffic/2026/11/23/09/seg.jsonl.gz"]


async def test_put_replaces_and_empty_object(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put("k", b"first", content_type="text/plain")
    await store.put("k", b"second", content_type="text/plain")
    await store.put("empty", b"", content_type="text/plain")
    assert await store.get("k") == b"second"
    assert await store.get("empty") == b""


async def test_list_paginates_in_key_order_relative_to_prefix(
    make_store: StoreFactory, s3_env: SeaweedS3, s3_bucket: str
) -> None:
    store = make_store(page_size=2)
    keys = ["b/2", "a/1", "a/3", "a/2", "c", "a/10"]
    for key in keys:
        await store.put(key, key.encode(), content_type="text/plain")
    # Neighbours that share the prefix string but not the prefix directory stay out.
    outside = make_store(prefix="captures2")
    await outside.put("a/1", b"x", content_type="text/plain")
    root = make_store(prefix="")
    await root.put("top", b"x", content_type="text/plain")

    calls: list[dict[str, Any]] = []
    await store.open()
    store.client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    assert await _collect(store) == [(k, len(k)) for k in sorted(keys)]
    assert len(calls) == 3  # 6 keys, 2 a page: continuation tokens were followed
    assert await _collect(store, "a/") == [("a/1", 3), ("a/10", 4), ("a/2", 3), ("a/3", 3)]
    assert await _collect(store, "a/1") == [("a/1", 3), ("a/10", 4)]
    assert await _collect(store, "zzz") == []
    assert [k for k, _ in await _collect(root)] == sorted(
        ["top", "captures2/a/1", *(f"captures/{k}" for k in keys)]
    )
    infos = [info async for info in store.list("c")]
    assert abs(infos[0].last_modified - time.time()) < 300


async def test_delete_and_missing_key(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put("x/y", b"data", content_type="text/plain")
    await store.delete("x/y")
    await store.delete("x/y")  # a missing object is not an error
    with pytest.raises(StoreError) as info:
        await store.get("x/y")
    assert info.value.reason == "not_found"
    assert not info.value.retryable
    assert "x/y" in str(info.value)
    assert await _collect(store) == []


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a/"])
async def test_invalid_keys_are_refused(make_store: StoreFactory, key: str) -> None:
    store = make_store()
    with pytest.raises(StoreError) as info:
        await store.put(key, b"x", content_type="text/plain")
    assert info.value.reason == "client_error"
    assert not info.value.retryable


async def test_multipart_put(
    make_store: StoreFactory, s3_store_config: StoreConfig, s3_env: SeaweedS3, s3_bucket: str
) -> None:
    config = _with(s3_store_config, multipart_threshold_bytes=5 * MIB, sse="AES256")
    store = make_store(config)
    calls: list[str] = []
    await store.open()
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    data = os.urandom(12 * MIB)
    await store.put("big.jsonl", data, content_type="application/jsonlines")

    assert calls == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]  # 5 + 5 + 2 MiB
    head = await _head(s3_env, s3_bucket, "captures/big.jsonl")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(data)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/jsonlines"
    got = await store.get("big.jsonl")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def test_failed_multipart_is_aborted(
    make_store: StoreFactory, s3_store_config: StoreConfig, s3_env: SeaweedS3, s3_bucket: str
) -> None:
    store = make_store(_with(s3_store_config, multipart_threshold_bytes=5 * MIB))
    await store.open()

    def fail_second_part(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            raise ConnectionResetError("connection reset by test")

    store.client.meta.events.register("before-parameter-build.s3.UploadPart", fail_second_part)
    with pytest.raises(StoreError) as info:
        await store.put("big", os.urandom(11 * MIB), content_type="application/octet-stream")
    assert info.value.reason == "connection"
    assert info.value.retryable

    def uploads() -> list[Any]:
        with contextlib.closing(s3_env.client()) as client:
            return list(client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []))

    assert await asyncio.to_thread(uploads) == []
    assert await _keys(s3_env, s3_bucket) == []


async def test_corrupted_body_is_rejected_as_checksum_error(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()

    def corrupt(request: Any, **_: Any) -> None:
        # After Content-MD5 is set and before signing: as if a byte flipped on the way.
        body = bytearray(request.body.getvalue())  # botocore wraps bytes in a BytesIO
        body[0] ^= 0xFF
        request.data = io.BytesIO(bytes(body))

    store.client.meta.events.register("before-sign.s3.PutObject", corrupt)
    with pytest.raises(StoreError) as info:
        await store.put("c", b"important bytes", content_type="text/plain")
    assert info.value.reason == "checksum"
    assert info.value.retryable
    assert "BadDigest" in str(info.value)
    store.client.meta.events.unregister("before-sign.s3.PutObject", corrupt)
    with pytest.raises(StoreError) as missing:
        await store.get("c")
    assert missing.value.reason == "not_found"


async def test_put_file_streams_the_file_and_is_checked(
    make_store: StoreFactory, s3_env: SeaweedS3, s3_bucket: str, tmp_path: Path
) -> None:
    store = make_store()
    await store.open()
    bodies: list[str] = []
    store.client.meta.events.register(
        "before-sign.s3.PutObject", lambda request, **_: bodies.append(type(request.body).__name__)
    )
    data = os.urandom(3 * MIB + 5)
    segment = tmp_path / "seg.jsonl"
    segment.write_bytes(data)
    await store.put_file("seg.jsonl", segment)
    assert bodies == ["BufferedReader"]  # the file itself goes out, not a copy in memory
    head = await _head(s3_env, s3_bucket, "captures/seg.jsonl")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert await store.get("seg.jsonl") == data
    assert segment.read_bytes() == data  # left for the caller

    def corrupt(request: Any, **_: Any) -> None:  # a byte flipped on the way
        request.data = io.BytesIO(b"X" + data[1:])

    store.client.meta.events.register("before-sign.s3.PutObject", corrupt)
    with pytest.raises(StoreError) as info:
        await store.put_file("bad.jsonl", segment)
    assert info.value.reason == "checksum" and info.value.retryable
    with pytest.raises(StoreError) as gone:
        await store.put_file("none.jsonl", tmp_path / "missing.jsonl")
    assert gone.value.retryable


async def test_sse_s3_is_applied(
    make_store: StoreFactory, s3_store_config: StoreConfig, s3_env: SeaweedS3, s3_bucket: str
) -> None:
    # Verified on the server: SeaweedFS 4.48 implements SSE-S3 and reports it on HEAD.
    store = make_store(_with(s3_store_config, sse="AES256"))
    await store.check()
    await store.put("enc", b"secret", content_type="text/plain")
    head = await _head(s3_env, s3_bucket, "captures/enc")
    assert head["ServerSideEncryption"] == "AES256"
    assert await store.get("enc") == b"secret"


async def test_sse_kms_parameters_are_sent(
    make_store: StoreFactory, s3_store_config: StoreConfig
) -> None:
    # Only the request is verified: SeaweedFS 4.48 has no KMS configured here and answers
    # InternalError (500) to SSE-KMS, which the store reports as a retryable server error.
    config = _with(s3_store_config, sse="aws:kms", kms_key_id="alias/modeltap")
    store = make_store(config)
    await store.open()
    sent: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: sent.append(dict(params))
    )
    with pytest.raises(StoreError) as info:
        await store.put("kms", b"x", content_type="text/plain")
    assert info.value.reason == "server_error"
    assert info.value.retryable
    assert sent[0]["ServerSideEncryption"] == "aws:kms"
    assert sent[0]["SSEKMSKeyId"] == "alias/modeltap"


async def test_check_wrong_secret(
    make_store: StoreFactory, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = make_store()
    with pytest.raises(StoreConfigError) as info:
        await store.check()
    assert "SignatureDoesNotMatch" in str(info.value)
    assert "secret access key" in str(info.value)
    assert s3_bucket in str(info.value)
    assert not info.value.retryable


async def test_check_unknown_access_key(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    store = make_store()
    with pytest.raises(StoreConfigError) as info:
        await store.check()
    assert "InvalidAccessKeyId" in str(info.value)


async def test_check_unknown_bucket(make_store: StoreFactory, s3_env: SeaweedS3) -> None:
    store = make_store(bucket="no-such-bucket-modeltap")
    with pytest.raises(StoreConfigError) as info:
        await store.check()
    assert "'no-such-bucket-modeltap' does not exist" in str(info.value)
    assert s3_env.endpoint_url in str(info.value)

    def buckets() -> list[str]:
        with contextlib.closing(s3_env.client()) as client:
            return [b["Name"] for b in client.list_buckets()["Buckets"]]

    assert "no-such-bucket-modeltap" not in await asyncio.to_thread(buckets)  # none created


async def test_check_unreachable_endpoint(
    make_store: StoreFactory, s3_store_config: StoreConfig
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    config = _with(s3_store_config, endpoint_url=endpoint, retry_base_seconds=0.05)
    store = make_store(config)
    with pytest.raises(StoreConfigError) as info:
        await store.check()  # a few attempts (store.check_attempts), then one clear error
    assert info.value.reason == "connection"
    assert endpoint in str(info.value)
    assert f"after {config.check_attempts} attempts" in str(info.value)


async def test_read_only_identity(
    make_store: StoreFactory, s3_env: SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = make_store()
    await writer.put("r/1", b"one", content_type="text/plain")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_env.reader.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.reader.secret_key)
    reader = make_store()
    with pytest.raises(StoreConfigError) as info:
        await reader.check()
    assert "AccessDenied" in str(info.value)
    with pytest.raises(StoreConfigError):
        await reader.put("r/2", b"two", content_type="text/plain")
    # A reader (the analyzer) checks listing instead, and can list and get.
    analyzer = make_store(check_write=False)
    await analyzer.check()
    assert await _collect(analyzer) == [("r/1", 3)]
    assert await analyzer.get("r/1") == b"one"


async def test_store_down_then_back(make_store: StoreFactory, s3_env: SeaweedS3) -> None:
    store = make_store()
    await store.put("before", b"kept", content_type="text/plain")
    sends: list[str] = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda **_: sends.append("x"))
    await asyncio.to_thread(s3_env.stop)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            await store.put("during", b"x", content_type="text/plain")
        assert len(sends) == 1  # botocore did not retry on its own
        assert info.value.reason == "connection"
        assert info.value.retryable
        assert not isinstance(info.value, StoreConfigError)
        assert time.monotonic() - started < 5
    finally:
        await asyncio.to_thread(s3_env.start)
    # Same client, same pool: the first put after the restart goes through.
    await store.put("after", b"y", content_type="text/plain")
    assert await store.get("before") == b"kept"
    assert [k for k, _ in await _collect(store)] == ["after", "before"]


async def test_probe_key_hidden_from_list(
    make_store: StoreFactory, s3_env: SeaweedS3, s3_bucket: str
) -> None:
    def put_probe() -> None:
        with contextlib.closing(s3_env.client()) as client:
            client.put_object(Bucket=s3_bucket, Key=f"captures/{PROBE_KEY}", Body=b"")

    await asyncio.to_thread(put_probe)
    store = make_store()
    await store.put("real", b"1", content_type="text/plain")
    assert await _collect(store) == [("real", 1)]


async def test_get_stream_reads_the_object_in_checked_pieces(
    make_store: StoreFactory, s3_store_config: StoreConfig
) -> None:
    store = make_store(_with(s3_store_config, multipart_threshold_bytes=5 * MIB))
    small, big = os.urandom(300_000), os.urandom(11 * MIB)  # one PUT; three parts (ETag "-3")
    await store.put("small.jsonl", small, content_type="application/jsonlines")
    await store.put("big.jsonl", big, content_type="application/jsonlines")
    for key, data in (("small.jsonl", small), ("big.jsonl", big)):
        got = [piece async for piece in store.get_stream(key, MIB)]
        assert b"".join(got) == data
        assert max(len(p) for p in got) <= MIB
    with pytest.raises(StoreError) as missing:
        _ = [piece async for piece in store.get_stream("nothing.jsonl")]
    assert missing.value.reason == "not_found"

    def wrong_etag(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ETag"] = '"' + "0" * 32 + '"'  # as if the bytes had changed on the way

    await store.open()
    store.client.meta.events.register("after-call.s3.GetObject", wrong_etag)
    got = []
    with pytest.raises(StoreError) as bad:
        async for piece in store.get_stream("small.jsonl", 100_000):
            got.append(piece)
    assert bad.value.reason == "checksum"
    assert b"".join(got) == small  # raised after the last piece, before the reader commits
