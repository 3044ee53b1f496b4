"""Object stores: one small interface (:mod:`.base`), a local-directory and an S3 implementation.

Opening a destination lives here, above both implementations, so neither of them imports the
module that chooses between them.
"""

from __future__ import annotations

from modeltap.core.errors import ConfigError
from modeltap.core.store.base import ObjectInfo, S3Settings, Store, join_key, split_destination

__all__ = ["ObjectInfo", "S3Settings", "Store", "join_key", "open_store", "split_destination"]


def open_store(uri: str, config: S3Settings | None = None) -> Store:
    """The store for a destination URI; an ``s3://`` destination needs the S3 settings
    ``config`` (endpoint, region, retries), a ``file://`` one none."""
    scheme, root, prefix = split_destination(uri)
    if scheme == "file":
        from modeltap.core.store.local import LocalStore

        return LocalStore(root)
    if config is None:
        raise ConfigError(f"store destination {uri!r}: an s3:// destination needs S3 settings")
    from modeltap.core.store.s3 import S3Store  # aiobotocore loads only when S3 is used

    return S3Store(bucket=root, prefix=prefix, config=config, uri=uri)
