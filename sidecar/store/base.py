"""The store interface: ``put`` returns only once the backend confirmed the object.

A destination is one URI, ``s3://bucket/prefix`` or ``file:///dir``; keys are relative to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from sidecar.errors import ConfigError

if TYPE_CHECKING:
    from modeltap.core.store_config import StoreConnection


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str  # relative to the destination
    size: int
    last_modified: float  # epoch seconds


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


def open_store(uri: str, config: StoreConnection | None = None) -> Store:
    """The store for a destination URI; S3 settings come from ``config``."""
    scheme, root, prefix = split_destination(uri)
    if scheme == "file":
        from sidecar.store.local import LocalStore

        return LocalStore(root)
    from modeltap.core.store_config import StoreConnection
    from sidecar.store.s3 import S3Store

    return S3Store(bucket=root, prefix=prefix, config=config or StoreConnection(), uri=uri)
