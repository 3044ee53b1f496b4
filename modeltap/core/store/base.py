"""The store interface: ``put`` returns only once the backend confirmed the object.

A destination is one URI, ``s3://bucket/prefix`` or ``file:///dir``; keys are relative to it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

from modeltap.core.errors import ConfigError

PIECE_BYTES = 1 << 20
"""What ``Store.get_stream`` yields at a time by default."""


STREAM_IO = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-stream")
"""Where ``get_stream`` reads files and hashes pieces: not the event loop's default executor,
whose threads may all be waiting for those very pieces (a reader pulls pieces from a worker
thread, :mod:`analyzer.object_stream`); these threads wait on nothing but the disk."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str  # relative to the destination
    size: int
    last_modified: float  # epoch seconds


class S3Settings(Protocol):
    """What the S3 store reads from its configuration. Each process declares its own settings
    object (the sidecar's ``[store]`` table, the analyzer's flags and TOML) with these fields;
    the core only states what it needs, so it imports neither process."""

    @property
    def region(self) -> str: ...
    @property
    def endpoint_url(self) -> str: ...
    @property
    def path_style(self) -> bool: ...
    @property
    def sse(self) -> Literal["", "AES256", "aws:kms"]: ...
    @property
    def kms_key_id(self) -> str: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def multipart_threshold_bytes(self) -> int: ...
    @property
    def retry_base_seconds(self) -> float: ...
    @property
    def retry_max_seconds(self) -> float: ...
    @property
    def check_attempts(self) -> int: ...


class Store(Protocol):
    """What the uploader and the analyzer need from object storage."""

    uri: str

    async def check(self) -> None:
        """Fail with StoreConfigError when the destination is unusable (start-up check)."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None = None
    ) -> None:
        """Store ``data`` at ``key``; return only after the store confirmed size and checksum."""

    async def get(self, key: str) -> bytes:
        """Return the object's bytes; StoreError (KeyError-like) if it does not exist."""

    def get_stream(self, key: str, piece_bytes: int = PIECE_BYTES) -> AsyncGenerator[bytes, None]:
        """Yield the object's bytes in pieces of at most ``piece_bytes``, so a reader's memory
        follows the piece, not the object. Same errors as ``get``; a size or checksum mismatch
        is raised after the last piece (the reader must not commit what it read before then)."""

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix``, in key order."""

    async def delete(self, key: str) -> None:
        """Remove an object (missing objects are not an error)."""

    async def close(self) -> None:
        """Release connections."""


def split_destination(uri: str) -> tuple[str, str, str]:
    """Split a destination URI into (scheme, bucket-or-root, prefix without slashes at the ends)."""
    if not isinstance(uri, str):
        raise ConfigError(f"store destination {uri!r}: expected a URI string")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. "s3://[": an unclosed IPv6 bracket
        raise ConfigError(f"store destination {uri!r}: {exc}") from None
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"store destination {uri!r}: s3:// needs a bucket")
        return "s3", parts.netloc, parts.path.strip("/")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"store destination {uri!r}: use file:///absolute/dir")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ConfigError(f"store destination {uri!r}: the directory must be absolute")
        return "file", path.rstrip("/") or "/", ""
    raise ConfigError(f"store destination {uri!r}: expected s3://bucket/prefix or file:///dir")


def join_key(prefix: str, key: str) -> str:
    """Join a prefix and a key with exactly one slash (SageMaker's '//' pitfall avoided)."""
    key = key.lstrip("/")
    return f"{prefix}/{key}" if prefix else key
