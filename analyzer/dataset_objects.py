"""Which objects of a batch job's dataset a window reads: those under the window's hour prefixes
(``partitioned``), else those last modified within it. Read by the data-quality run
(``analyzer.job``) and by the sections that read a dataset's rows (``analyzer.batch_rows``)."""

from __future__ import annotations

import logging
import os

from analyzer.errors import DataError
from analyzer.targets import BatchDataset
from analyzer.window import Window
from modeltap.core.store.base import ObjectInfo, Store, split_destination

log = logging.getLogger("analyzer.job")  # its warnings were the job's, under that name


def missing_dataset_dir(uri: str) -> str | None:
    """The directory of a ``file://`` dataset when it does not exist (a misconfiguration); None
    for one that exists or an object-store prefix (which may hold no objects yet)."""
    scheme, root, _ = split_destination(uri)
    return root if scheme == "file" and not os.path.isdir(root) else None


async def list_dataset(store: Store, dataset: BatchDataset, window: Window) -> list[ObjectInfo]:
    """The dataset objects of the window: by hour prefix, or by last-modified time.

    A local dataset directory that does not exist is a DataError; a prefix without any object
    at all is logged as a warning (the run is NoData), since a path with a typo looks like that.
    """
    missing = missing_dataset_dir(dataset.uri)
    if missing is not None:
        raise DataError(f"dataset {dataset.uri}: no such directory {missing}")
    found = await _list_dataset(store, dataset, window)
    if not found and not await _holds_objects(store):
        log.warning("dataset %s holds no objects at all: is the path right?", dataset.uri)
    return found


async def _holds_objects(store: Store) -> bool:
    """Whether anything is stored under the store's prefix (one listing page at most)."""
    listing = store.list("")
    try:
        async for _ in listing:
            return True
        return False
    finally:
        aclose = getattr(listing, "aclose", None)
        if aclose is not None:
            await aclose()


async def _list_dataset(store: Store, dataset: BatchDataset, window: Window) -> list[ObjectInfo]:
    if dataset.partitioned:
        found: list[ObjectInfo] = []
        for hour in window.hours():
            found.extend([o async for o in store.list(f"{hour:%Y/%m/%d/%H}/")])
        return found
    start, end = window.start.timestamp(), window.end.timestamp()
    return [o async for o in store.list("") if start <= o.last_modified < end]


__all__ = ["list_dataset", "missing_dataset_dir"]
