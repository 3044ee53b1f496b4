"""Amazon S3 (and S3-compatible stores) as a store, through one long-lived aiobotocore client.

Invariants:
- ``put`` returns only once S3 confirmed the object: the body goes with a Content-MD5, so the
  server rejects a corrupted upload (BadDigest), and the returned ETag is compared with the MD5
  we computed (for a multipart upload, with the MD5 of the part MD5s plus ``-N``). Under SSE-KMS
  the ETag is not an MD5; there the per-part Content-MD5 and a HEAD of the size confirm it.
- A failed multipart upload is aborted, so no parts are left behind (a bucket lifecycle rule
  "AbortIncompleteMultipartUpload" still catches uploads lost to a crash).
- Every failure is a ``StoreError`` with a ``reason`` label and ``retryable``; an unusable
  configuration (unknown bucket, refused credentials) is a ``StoreConfigError``.
- botocore does no retries of its own: the uploader retries with backoff and keeps the data on
  disk meanwhile, so a hidden retry loop here would only multiply latency and hide failures
  from the upload metrics.
- A failure lets go of the request at once. A connection cut mid-request leaves aiohttp's request,
  connection and payload (botocore wraps the body in a BytesIO, and aiohttp copies that) in
  reference cycles through the exceptions' tracebacks, which only a full garbage collection frees;
  in a busy sidecar that comes rarely, so each failed attempt kept a copy of the segment resident
  (bench/soak: RSS stepped up after every connection-reset fault). ``_error`` therefore cuts the
  tracebacks off the botocore/aiohttp exception chain (``_drop_tracebacks``); the StoreError
  keeps its own traceback and the causes' messages.
- No hashing of bodies on the event loop: the MD5 runs in a thread, and requests are signed
  with UNSIGNED-PAYLOAD (``payload_signing_enabled=False``, over http too), since botocore's
  payload SHA-256 of a 16 MiB segment stalled the loop, and every request on it, for about
  20 ms. The body stays bound to the signature through Content-MD5, a signed header.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointResolutionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from modeltap.core.errors import StoreConfigError, StoreError
from modeltap.core.store.base import PIECE_BYTES, STREAM_IO, ObjectInfo, S3Settings, join_key

if TYPE_CHECKING:
    from modeltap.core.store.base import Store

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
# Written (and removed when allowed) by check(); one fixed key, so a sidecar that may not delete
# leaves at most one zero-byte object behind, and list() hides it.
PROBE_KEY = ".modeltap-write-check"
_HASH_IN_THREAD_BYTES = 256 * 1024
_FILE_CHUNK_BYTES = 1024 * 1024

_THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
    }
)
_CHECKSUM_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchUpload", "404", "NotFound"})
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "InvalidSecurity",
        "KMS.AccessDeniedException",
    }
)
# Failures of the credentials themselves that a later call may not have: a session token can be
# refreshed by botocore, a skewed clock can be fixed by NTP. Not config errors, but not our data.
_TRANSIENT_AUTH_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "RequestTimeTooSkewed"}
)
_TIMEOUT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException"})


def _md5(data: bytes | memoryview) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


async def _md5_off_loop(data: bytes | memoryview) -> bytes:
    # hashlib releases the GIL for large inputs, so a thread really takes it off the loop.
    if len(data) >= _HASH_IN_THREAD_BYTES:
        return await asyncio.to_thread(_md5, data)
    return _md5(data)


def _open_and_md5(path: Path) -> tuple[BinaryIO, int, bytes]:
    """Open ``path`` and hash it (in a worker thread); the file is returned at offset 0."""
    fh = open(path, "rb")  # noqa: SIM115 - the caller closes it once the request is done
    try:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        while chunk := fh.read(_FILE_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh, size, digest.digest()


def _drop_tracebacks(exc: BaseException) -> None:
    """Cut the tracebacks off ``exc`` and every exception it was caused by or raised during.

    Their frames hold the failed request (its body copy, connection, sockets) in reference cycles
    that only a full garbage collection would free; without the tracebacks, reference counting
    frees them as soon as the exceptions go. Only the links are cut: no frame is cleared (in
    Python 3.11 ``frame.clear()`` would close a suspended coroutine).
    """
    todo = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        e.__traceback__ = None
        todo.extend(c for c in (e.__cause__, e.__context__) if c is not None)


def _etag(response: dict[str, Any]) -> str:
    return str(response.get("ETag", "")).strip('"').lower()


def _valid_key(key: str) -> bool:
    # The same rule as LocalStore, so a key layout works with both stores.
    return (
        bool(key)
        and not key.startswith("/")
        and all(p not in ("", ".", "..") for p in key.split("/"))
    )


class S3Store:
    """Objects under ``s3://bucket/prefix``; keys passed in and out are relative to the prefix.

    The client is created on first use (or by ``open()``) and lives until ``close()``.
    ``check_write=False`` makes ``check()`` test listing instead of writing (for readers such as
    the analyzer). ``page_size`` and ``part_size_bytes`` exist for tests and tuning.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        config: S3Settings,
        uri: str,
        connect_timeout_seconds: float = 5.0,
        read_timeout_seconds: float = 60.0,
        check_timeout_seconds: float = 30.0,
        check_write: bool = True,
        page_size: int = 1000,
        part_size_bytes: int | None = None,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be 1-1000, not {page_size}")
        if part_size_bytes is not None and part_size_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_size_bytes must be at least {MIN_PART_BYTES}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = uri
        self._cfg = config
        self._connect_timeout = connect_timeout_seconds
        self._read_timeout = read_timeout_seconds
        self._check_timeout = check_timeout_seconds
        self._check_write = check_write
        self._page_size = page_size
        # 8 MiB parts unless the threshold is lower; never below S3's 5 MiB minimum.
        self._part_size = part_size_bytes or max(
            MIN_PART_BYTES, min(8 * MIB, config.multipart_threshold_bytes)
        )
        self._endpoint = config.endpoint_url or f"AWS S3 ({config.region})"
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._open_lock = asyncio.Lock()

    # -- connection --------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the S3 client if it does not exist yet (the first operation also does this)."""
        await self._get_client()

    @property
    def client(self) -> Any:
        """The underlying aiobotocore S3 client (after ``open()``), e.g. to register event hooks."""
        if self._client is None:
            raise RuntimeError(f"store {self.uri} is not open")
        return self._client

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._open_lock:
            if self._client is None:
                cfg = self._cfg
                aio_config = AioConfig(
                    connect_timeout=self._connect_timeout,
                    read_timeout=self._read_timeout,
                    # One attempt in all: the uploader retries with backoff (module docstring).
                    # Not "max_attempts", which counts retries after the first try.
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    # UNSIGNED-PAYLOAD: otherwise botocore SHA-256s every body on the event loop
                    # (16 MiB: ~20 ms of stalled requests per segment). Integrity stays end to
                    # end: the Content-MD5 we send (hashed off the loop) is a signed header, and
                    # the store rejects a body that does not match it.
                    s3={
                        "payload_signing_enabled": False,
                        **({"addressing_style": "path"} if cfg.path_style else {}),
                    },
                    max_pool_connections=max(10, 2 * cfg.max_concurrency),
                    # We send Content-MD5 ourselves (hashed off the loop); no second checksum.
                    request_checksum_calculation="when_required",
                )
                stack = AsyncExitStack()
                try:
                    self._client = await stack.enter_async_context(
                        AioSession().create_client(
                            "s3",
                            region_name=cfg.region or None,
                            endpoint_url=cfg.endpoint_url or None,
                            config=aio_config,
                        )
                    )
                except BaseException as exc:
                    await stack.aclose()
                    if isinstance(exc, (ValueError, BotoCoreError)):  # e.g. a malformed URL
                        raise StoreConfigError(
                            f"cannot create an S3 client for {self._where(None)}: {exc}"
                        ) from exc
                    raise
                self._stack = stack
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    # -- helpers -------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        if not _valid_key(key):
            raise StoreError(f"invalid object key {key!r}", reason="client_error", retryable=False)
        return join_key(self.prefix, key)

    def _where(self, key: str | None) -> str:
        if key is None:
            return f"s3://{self.bucket}/{self.prefix} at {self._endpoint}"
        return f"s3://{self.bucket}/{key} at {self._endpoint}"

    def _sse_params(self) -> dict[str, str]:
        if self._cfg.sse == "AES256":
            return {"ServerSideEncryption": "AES256"}
        if self._cfg.sse == "aws:kms":
            params = {"ServerSideEncryption": "aws:kms"}
            if self._cfg.kms_key_id:
                params["SSEKMSKeyId"] = self._cfg.kms_key_id
            return params
        return {}

    def _error(self, exc: BaseException, op: str, key: str | None) -> StoreError:
        """The StoreError for a failed ``op``; ``exc`` loses its tracebacks (module docstring)."""
        _drop_tracebacks(exc)
        return map_error(exc, op=op, where=self._where(key), bucket=self.bucket)

    # -- the Store protocol --------------------------------------------------------------------
    async def check(self) -> None:
        """Fail with one clear StoreConfigError if the bucket, credentials or endpoint are wrong.

        A writer puts a zero-byte probe object under the prefix (PutObject is the one permission
        a sidecar needs; HeadBucket would need ListBucket and cannot tell a wrong key from a
        missing permission). Deleting the probe may be denied under least privilege; that is
        logged at debug level only.

        A store that is there but busy at start-up (5xx, throttling, timeouts, connection
        errors) gets ``store.check_attempts`` attempts, ``store.retry_base_seconds`` doubling
        (capped at ``store.retry_max_seconds``) between them, all within the check timeout
        (30 s); an answer that is not S3's (an HTTP server without S3 error documents) or a
        refusal fails at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._check_timeout
        attempts = self._cfg.check_attempts
        op = "write check" if self._check_write else "list check"
        attempt = 1
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._check_once(op)
                return
            except TimeoutError as exc:
                raise StoreConfigError(
                    f"{op} of {self._where(None)} did not finish within {self._check_timeout:g}s "
                    f"({attempt} attempt(s))",
                    reason="timeout",
                ) from exc
            except StoreConfigError:
                raise
            except StoreError as exc:
                delay = min(
                    self._cfg.retry_max_seconds, self._cfg.retry_base_seconds * 2 ** (attempt - 1)
                )
                if not exc.retryable or attempt >= attempts or loop.time() + delay >= deadline:
                    tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise StoreConfigError(f"{exc}{tried}", reason=exc.reason) from None
                log.warning(
                    "store %s failed (%s); attempt %d of %d in %.2fs",
                    op,
                    exc,
                    attempt + 1,
                    attempts,
                    delay,
                )
            attempt += 1
            await asyncio.sleep(delay)

    async def _check_once(self, op: str) -> None:
        try:
            client = await self._get_client()
            if self._check_write:
                await self._check_put(client)
            else:
                await client.list_objects_v2(
                    Bucket=self.bucket, Prefix=self._list_prefix(""), MaxKeys=1
                )
        except (StoreError, TimeoutError):
            raise
        except Exception as exc:
            err = self._error(exc, op, None)
            if err.reason in ("connection", "timeout"):
                raise StoreError(
                    f"cannot reach the S3 endpoint {self._endpoint} for bucket {self.bucket}: "
                    f"{_one_line(exc)}",
                    reason=err.reason,
                ) from None
            raise err from None

    async def _check_put(self, client: Any) -> None:
        probe = join_key(self.prefix, PROBE_KEY)
        response = await client.put_object(
            Bucket=self.bucket,
            Key=probe,
            Body=b"",
            ContentMD5=base64.b64encode(_md5(b"")).decode(),
            ContentType="application/octet-stream",
            **self._sse_params(),
        )
        if not _etag(response):  # every S3 PutObject answer carries one
            raise StoreConfigError(
                f"write check {self._where(None)}: the endpoint answered the probe PUT without "
                "an ETag; it does not look like an S3 API (check store.endpoint_url)"
            )
        try:
            await client.delete_object(Bucket=self.bucket, Key=probe)
        except (BotoCoreError, ClientError, aiohttp.ClientError) as exc:
            log.debug("could not delete the write probe %s (harmless): %s", self._where(probe), exc)

    async def put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None = None
    ) -> None:
        full = self._key(key)
        params: dict[str, Any] = {"ContentType": content_type, **self._sse_params()}
        if content_encoding:
            params["ContentEncoding"] = content_encoding
        try:
            client = await self._get_client()
            if len(data) >= self._cfg.multipart_threshold_bytes:
                await self._put_multipart(client, full, data, params)
            else:
                await self._put_single(client, full, data, params)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "put", full) from exc

    async def put_file(
        self, key: str, source: Path, *, content_type: str = "application/jsonlines"
    ) -> None:
        """Store a file, streamed from disk: no copy of it in memory or on the event loop.

        A bytes body would be wrapped in a BytesIO by botocore, whose buffer aiohttp exports,
        which copies the whole body on the loop (16 MiB: several ms of stalled requests per
        segment, bench/capture). A file is hashed in a thread and sent in chunks that aiohttp
        reads in a thread. Files at the multipart threshold go through :meth:`put`.
        """
        full = self._key(key)
        params: dict[str, Any] = {"ContentType": content_type, **self._sse_params()}
        try:
            fh, size, digest = await asyncio.to_thread(_open_and_md5, source)
        except OSError as exc:
            raise self._error(exc, "put", full) from exc
        try:
            if size >= self._cfg.multipart_threshold_bytes:
                fh.close()
                data = await asyncio.to_thread(source.read_bytes)
                await self.put(key, data, content_type=content_type)
                return
            client = await self._get_client()
            response = await client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=fh,
                ContentLength=size,
                ContentMD5=base64.b64encode(digest).decode(),
                **params,
            )
            self._check_etag(response, full, digest, size)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "put", full) from exc
        finally:
            fh.close()

    def _check_etag(self, response: dict[str, Any], full: str, digest: bytes, size: int) -> None:
        if self._etag_is_md5(response) and _etag(response) != digest.hex():
            raise StoreError(
                f"put {self._where(full)}: the stored ETag {_etag(response)!r} is not the MD5 "
                f"{digest.hex()!r} of the {size} bytes sent",
                reason="checksum",
            )

    async def _put_single(
        self, client: Any, full: str, data: bytes, params: dict[str, Any]
    ) -> None:
        digest = await _md5_off_loop(data)
        response = await client.put_object(
            Bucket=self.bucket,
            Key=full,
            Body=data,
            ContentMD5=base64.b64encode(digest).decode(),
            **params,
        )
        self._check_etag(response, full, digest, len(data))

    async def _put_multipart(
        self, client: Any, full: str, data: bytes, params: dict[str, Any]
    ) -> None:
        part_size = max(self._part_size, math.ceil(len(data) / MAX_PARTS))
        created = await client.create_multipart_upload(Bucket=self.bucket, Key=full, **params)
        upload_id = created["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            digests: list[bytes] = []
            view = memoryview(data)
            # Parts go one after another: the uploader already runs segments in parallel, and
            # this keeps one connection per segment.
            for number, offset in enumerate(range(0, len(data), part_size), start=1):
                chunk = view[offset : offset + part_size]
                digest = await _md5_off_loop(chunk)
                response = await client.upload_part(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(chunk),
                    ContentMD5=base64.b64encode(digest).decode(),
                )
                if self._etag_is_md5(response) and _etag(response) != digest.hex():
                    raise StoreError(
                        f"put {self._where(full)}: part {number} ETag {_etag(response)!r} "
                        f"is not the MD5 {digest.hex()!r} of the part sent",
                        reason="checksum",
                    )
                parts.append({"ETag": response["ETag"], "PartNumber": number})
                digests.append(digest)
            done = await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException as exc:  # also on cancellation: do not leave parts behind
            await self._abort(client, full, upload_id, exc)
            raise
        await self._confirm_multipart(client, full, data, digests, done)

    async def _confirm_multipart(
        self,
        client: Any,
        full: str,
        data: bytes,
        digests: list[bytes],
        done: dict[str, Any],
    ) -> None:
        etag = _etag(done)
        expected = (
            f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"
        )
        if self._etag_is_md5(done):
            if etag != expected:
                raise StoreError(
                    f"put {self._where(full)}: the multipart ETag {etag!r} is not {expected!r} "
                    f"(MD5 of the {len(digests)} part MD5s)",
                    reason="checksum",
                )
            return
        # SSE-KMS: the ETag is opaque. Each part was MD5-checked by S3; confirm count and size.
        if not etag.endswith(f"-{len(digests)}"):
            raise StoreError(
                f"put {self._where(full)}: the multipart ETag {etag!r} does not name "
                f"{len(digests)} parts",
                reason="checksum",
            )
        try:
            head = await client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _code(exc) in _DENIED_CODES:  # may write, may not read: the parts were checked
                log.debug("cannot HEAD %s to confirm its size: %s", self._where(full), exc)
                return
            raise
        if int(head.get("ContentLength", -1)) != len(data):
            raise StoreError(
                f"put {self._where(full)}: stored size {head.get('ContentLength')} is not "
                f"the {len(data)} bytes sent",
                reason="checksum",
            )

    async def _abort(self, client: Any, full: str, upload_id: str, cause: BaseException) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except Exception as exc:
            log.warning(
                "could not abort multipart upload %s of %s after %r: %s "
                "(a lifecycle rule AbortIncompleteMultipartUpload removes such parts)",
                upload_id,
                self._where(full),
                cause,
                exc,
            )

    def _etag_is_md5(self, response: dict[str, Any]) -> bool:
        # S3 ETags are MD5-based except for SSE-KMS and SSE-C objects.
        sse = response.get("ServerSideEncryption") or self._sse_params().get("ServerSideEncryption")
        return not str(sse).startswith("aws:kms") and not response.get("SSECustomerAlgorithm")

    async def get(self, key: str) -> bytes:
        full = self._key(key)
        response = await self._get_object(full)
        try:
            async with response["Body"] as stream:
                data: bytes = await stream.read()
        except Exception as exc:
            raise self._get_error(exc, full) from exc
        self._check_length(full, response, len(data))
        etag = self._md5_etag(response)
        if etag is not None:
            self._check_md5(full, etag, (await _md5_off_loop(data)).hex())
        return data

    async def get_stream(
        self, key: str, piece_bytes: int = PIECE_BYTES
    ) -> AsyncGenerator[bytes, None]:
        full, loop = self._key(key), asyncio.get_running_loop()
        size, digest = 0, hashlib.md5(usedforsecurity=False)
        response = await self._get_object(full)
        async with response["Body"] as stream:
            while True:
                try:
                    piece: bytes = await stream.read(piece_bytes)
                except Exception as exc:
                    raise self._get_error(exc, full) from exc
                if not piece:
                    break
                size += len(piece)
                if len(piece) >= _HASH_IN_THREAD_BYTES:
                    await loop.run_in_executor(STREAM_IO, digest.update, piece)
                else:
                    digest.update(piece)
                yield piece
        self._check_length(full, response, size)
        etag = self._md5_etag(response)
        if etag is not None:
            self._check_md5(full, etag, digest.hexdigest())

    async def _get_object(self, full: str) -> dict[str, Any]:
        """The GetObject answer (its body not read yet), or the failure as a StoreError."""
        try:
            client = await self._get_client()
            response: dict[str, Any] = await client.get_object(Bucket=self.bucket, Key=full)
        except Exception as exc:
            raise self._get_error(exc, full) from exc
        return response

    def _get_error(self, exc: Exception, full: str) -> StoreError:
        """A failed get as a StoreError; a missing object is not retried."""
        err = self._error(exc, "get", full)
        if err.reason == "not_found":
            return StoreError(
                f"get {self._where(full)}: no such object", reason="not_found", retryable=False
            )
        return err

    def _check_length(self, full: str, response: dict[str, Any], size: int) -> None:
        length = response.get("ContentLength")
        if length is not None and int(length) != size:
            raise StoreError(
                f"get {self._where(full)}: read {size} bytes, the object has {length}",
                reason="checksum",
            )

    def _md5_etag(self, response: dict[str, Any]) -> str | None:
        """The object's ETag when it is the MD5 of its bytes (else None: nothing to compare)."""
        etag = _etag(response)
        return etag if len(etag) == 32 and self._etag_is_md5(response) else None

    def _check_md5(self, full: str, etag: str, md5_hex: str) -> None:
        if md5_hex != etag:
            raise StoreError(
                f"get {self._where(full)}: the bytes read do not match the ETag {etag!r}",
                reason="checksum",
            )

    def _list_prefix(self, prefix: str) -> str:
        return f"{self.prefix}/{prefix}" if self.prefix else prefix

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        s3_prefix = self._list_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": s3_prefix,
                "MaxKeys": self._page_size,
            }
            if token:
                kwargs["ContinuationToken"] = token
            try:
                client = await self._get_client()
                page = await client.list_objects_v2(**kwargs)
            except Exception as exc:
                raise self._error(exc, "list", s3_prefix) from exc
            for obj in page.get("Contents", ()):
                rel = obj["Key"][strip:]
                if rel == PROBE_KEY:
                    continue
                yield ObjectInfo(
                    key=rel, size=int(obj["Size"]), last_modified=obj["LastModified"].timestamp()
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            client = await self._get_client()
            await client.delete_object(Bucket=self.bucket, Key=full)
        except Exception as exc:
            err = self._error(exc, "delete", full)
            if err.reason != "not_found":
                raise err from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def map_error(exc: BaseException, *, op: str, where: str, bucket: str) -> StoreError:
    """Turn a botocore/aiohttp failure of ``op`` on ``where`` into a StoreError with a reason."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, ClientError):
        code, status = _code(exc), _status(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        why = f"{code} (HTTP {status}){': ' + message if message else ''}"
        bare = code in ("", str(status))
        if op.endswith("check") and (
            status == 501 or (bare and status < 500 and status not in (403, 404))
        ):
            # No S3 error document (botocore falls back to the status as the code), or "not
            # implemented": an HTTP server that is not an S3 API, which no retry changes.
            return StoreConfigError(
                f"{op} {where}: the endpoint answered HTTP {status} "
                f"{'(' + message + ') ' if message else ''}without an S3 error; it does not look "
                "like an S3 API (check store.endpoint_url)"
                if bare
                else f"{op} {where}: not implemented by the endpoint, {why}",
                reason="client_error",
            )
        if code in _THROTTLE_CODES or status in (429, 503):
            return StoreError(f"{op} {where}: throttled, {why}", reason="throttled")
        if code in _CHECKSUM_CODES:
            return StoreError(f"{op} {where}: checksum rejected, {why}", reason="checksum")
        if code in _TIMEOUT_CODES:
            return StoreError(f"{op} {where}: {why}", reason="timeout")
        if status >= 500:
            return StoreError(f"{op} {where}: server error {why}", reason="server_error")
        if code == "NoSuchBucket" or (op.endswith("check") and status == 404):
            return StoreConfigError(f"{op} {where}: bucket {bucket!r} does not exist ({why})")
        if code in _NOT_FOUND_CODES or status == 404:
            return StoreError(
                f"{op} {where}: not found, {why}", reason="not_found", retryable=False
            )
        if code == "InvalidAccessKeyId":
            return StoreConfigError(
                f"{op} {where}: the access key id is unknown to the endpoint; check the AWS "
                f"credentials ({why})"
            )
        if code == "SignatureDoesNotMatch":
            return StoreConfigError(
                f"{op} {where}: request signature rejected; the secret access key is probably "
                f"wrong ({why})"
            )
        if code in _TRANSIENT_AUTH_CODES:
            return StoreError(
                f"{op} {where}: credentials rejected for now, {why}", reason="client_error"
            )
        if code in _DENIED_CODES or status == 403:
            return StoreConfigError(
                f"{op} {where}: access denied; the credentials lack permission for bucket "
                f"{bucket!r} ({why})"
            )
        return StoreError(f"{op} {where}: rejected, {why}", reason="client_error", retryable=False)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return StoreConfigError(
            f"{op} {where}: no usable AWS credentials (env, web identity, profile or instance "
            f"role): {exc}"
        )
    if isinstance(exc, EndpointResolutionError):
        return StoreConfigError(f"{op} {where}: the endpoint is unusable: {exc}")
    if isinstance(exc, (ParamValidationError, NoRegionError)):
        return StoreError(
            f"{op} {where}: invalid request: {exc}", reason="client_error", retryable=False
        )
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError, TimeoutError)):
        return StoreError(f"{op} {where}: timed out: {exc}", reason="timeout")
    if isinstance(
        exc, (BotoConnectionError, HTTPClientError, aiohttp.ClientError, ConnectionError)
    ):
        return StoreError(f"{op} {where}: connection failed: {exc}", reason="connection")
    if isinstance(exc, (BotoCoreError, OSError)):
        return StoreError(f"{op} {where}: {type(exc).__name__}: {exc}", reason="io")
    return StoreError(f"{op} {where}: unexpected {type(exc).__name__}: {exc}", reason="io")


if TYPE_CHECKING:

    def _conforms(store: S3Store) -> Store:  # mypy checks S3Store against the protocol
        return store
