"""Where input files come from: local paths (files, directories, globs) or a store prefix.

``DataSource(inputs, options)`` resolves its inputs once (so the file list and total size are
known for the progress bar) and can then be iterated any number of times; the baseline builder
reads it twice. Local files are streamed from disk. Store inputs (``s3://bucket/prefix`` or
``file:///dir/prefix``) go through ``sidecar.store.open_store`` and its ``list``/``get``
interface only: every object under the prefix, in key order, is downloaded whole and then parsed
in chunks, so memory grows with the largest object, not with the dataset. Hidden files and
Spark/SageMaker markers (names starting with ``.`` or ``_``) are skipped. An S3 store is opened
with the ``StoreConnection`` given (endpoint URL, region, path-style addressing for S3-compatible
stores; ``modeltap baseline --store-*``); credentials come from botocore's usual chain.
"""

from __future__ import annotations

import asyncio
import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import DataError
from analyzer.readers import Chunk, ReadOptions, read_chunks
from modeltap.core.store_config import StoreConnection
from sidecar.errors import StoreError
from sidecar.store import Store, open_store


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str  # what errors call it: the path or the full URI
    size: int
    path: str | None = None  # a local file
    store_uri: str | None = None  # or a key in the store opened at this URI
    key: str | None = None


def _is_store(uri: str) -> bool:
    return uri.startswith(("s3://", "file://"))


def _skipped(name: str) -> bool:
    return name.startswith((".", "_"))


def _local_files(spec: str) -> list[InputFile]:
    paths = sorted(glob.glob(spec)) if any(c in spec for c in "*?[") else [spec]
    out: list[InputFile] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(
                f
                for f in path.rglob("*")
                if f.is_file() and not any(_skipped(part) for part in f.relative_to(path).parts)
            )
        elif path.is_file():
            files = [path]
        else:
            raise DataError("no such file or directory", file=p)
        out.extend(InputFile(name=str(f), size=f.stat().st_size, path=str(f)) for f in files)
    return out


def _split_uri(uri: str) -> tuple[str, str]:
    """(store URI of the parent 'directory', last path element used as a key prefix)."""
    scheme, _, rest = uri.partition("://")
    trimmed = rest.rstrip("/")
    head, sep, last = trimmed.rpartition("/")
    if scheme == "s3" and not sep:  # s3://bucket
        return uri.rstrip("/"), ""
    if scheme == "file" and head in ("", "/"):
        return f"{scheme}:///", last
    return f"{scheme}://{head}", last


async def _list_store(uri: str, config: StoreConnection | None) -> list[InputFile]:
    parent, last = _split_uri(uri)
    store: Store = open_store(parent, config)
    try:
        out = []
        async for obj in store.list(last):
            rel = obj.key[len(last) :].lstrip("/") if last else obj.key
            if last and obj.key != last and not obj.key.startswith(last + "/"):
                continue  # "data" must not pick up "data2/..."
            if any(_skipped(part) for part in rel.split("/") if part):
                continue
            out.append(
                InputFile(
                    name=f"{parent.rstrip('/')}/{obj.key}",
                    size=obj.size,
                    store_uri=parent,
                    key=obj.key,
                )
            )
        return out
    finally:
        await store.close()


class DataSource:
    """A re-iterable set of input files (see the module docstring)."""

    def __init__(
        self,
        inputs: Sequence[str],
        options: ReadOptions | None = None,
        store_config: StoreConnection | None = None,
    ) -> None:
        """``store_config``: how to reach an S3 store (endpoint, region, path style); None for
        AWS with botocore's defaults."""
        if not inputs:
            raise DataError("no input given")
        self.options = options or ReadOptions()
        self.store_config = store_config
        self.files: list[InputFile] = []
        for spec in inputs:
            if _is_store(spec):
                try:
                    found = asyncio.run(_list_store(spec, store_config))
                except StoreError as exc:
                    raise DataError(f"cannot list the store: {exc}", file=spec) from exc
                if not found:
                    raise DataError("no objects under this prefix", file=spec)
                self.files.extend(found)
            else:
                self.files.extend(_local_files(spec))
        self.names = [f.name for f in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def describe(self) -> str:
        if len(self.files) == 1:
            return self.files[0].name
        return f"{len(self.files)} files ({self.files[0].name}, ...)"

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[tuple[InputFile, Chunk]]:
        """Every chunk of every file in order, with the file it came from (``columns``: see
        ``analyzer.readers.read_chunks``)."""
        local = [f for f in self.files if f.path is not None]
        if len(local) == len(self.files):
            for f in self.files:
                assert f.path is not None
                for chunk in read_chunks(f.path, f.name, self.options, columns):
                    yield f, chunk
            return
        loop = asyncio.new_event_loop()
        stores: dict[str, Store] = {}
        try:
            for f in self.files:
                if f.path is not None:
                    source: str | bytes = f.path
                else:
                    assert f.store_uri is not None and f.key is not None
                    store = stores.get(f.store_uri)
                    if store is None:
                        store = stores[f.store_uri] = open_store(f.store_uri, self.store_config)
                    try:
                        source = loop.run_until_complete(store.get(f.key))
                    except StoreError as exc:
                        raise DataError(f"cannot read the object: {exc}", file=f.name) from exc
                for chunk in read_chunks(source, f.name, self.options, columns):
                    yield f, chunk
        finally:
            for store in stores.values():
                loop.run_until_complete(store.close())
            loop.close()

    def __iter__(self) -> Iterator[Chunk]:
        for _, chunk in self.chunks():
            yield chunk
