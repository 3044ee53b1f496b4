"""Object stores: one small interface, a local-directory and an S3 implementation."""

from __future__ import annotations

from sidecar.store.base import ObjectInfo, Store, open_store, split_destination

__all__ = ["ObjectInfo", "Store", "open_store", "split_destination"]
