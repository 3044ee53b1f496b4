"""A local directory as a store: the embedded default, with the same key layout as S3.

Writes go to a temporary file in the target directory, are fsynced and renamed into place, so a
reader never sees half an object and a retried put replaces the object whole.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

from modeltap.core.errors import StoreConfigError, StoreError
from modeltap.core.store.base import PIECE_BYTES, STREAM_IO, ObjectInfo

_TMP = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Objects are files under ``root``; keys are relative paths with '/' separators."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.uri = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise StoreError(f"invalid object key {key!r}", reason="client_error", retryable=False)
        return self.root / key

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            probe_path = self.root / f"{_TMP}check-{uuid.uuid4()}"
            probe_path.write_bytes(b"")
            probe_path.unlink()

        try:
            await asyncio.to_thread(probe)
        except OSError as exc:
            raise StoreConfigError(f"store {self.uri} is not writable: {exc}") from exc

    async def put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None = None
    ) -> None:
        def write(tmp: Path) -> int:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            return len(data)

        await self._place(key, write)

    async def put_file(self, key: str, source: Path) -> None:
        """Store a file that is already durable on disk: hard-link it into place (copy across
        filesystems). The source file is left for the caller to delete."""

        def link(tmp: Path) -> int:
            try:
                os.link(source, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                shutil.copyfile(source, tmp)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            return source.stat().st_size

        await self._place(key, link)

    async def _place(self, key: str, fill: Callable[[Path], int]) -> None:
        """Fill a temporary file beside the object (``fill`` returns the size it must have),
        check its size, rename it into place and fsync the directory: readers never see half an
        object, and a retried put replaces the object whole."""
        path = self._path(key)

        def place() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{_TMP}{uuid.uuid4()}-{path.name}")
            try:
                expected = fill(tmp)
                if tmp.stat().st_size != expected:
                    raise StoreError(f"short write storing {key}")
                os.replace(tmp, path)
                _fsync_dir(path.parent)
            finally:
                tmp.unlink(missing_ok=True)

        try:
            await asyncio.to_thread(place)
        except OSError as exc:
            raise StoreError(f"storing {key} in {self.uri} failed: {exc}") from exc

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise self._read_error(key, exc) from exc

    async def get_stream(
        self, key: str, piece_bytes: int = PIECE_BYTES
    ) -> AsyncGenerator[bytes, None]:
        path, loop = self._path(key), asyncio.get_running_loop()
        try:
            fh = await loop.run_in_executor(STREAM_IO, open, path, "rb")
        except OSError as exc:
            raise self._read_error(key, exc) from exc
        try:
            while True:
                try:
                    piece = await loop.run_in_executor(STREAM_IO, fh.read, piece_bytes)
                except OSError as exc:
                    raise self._read_error(key, exc) from exc
                if not piece:
                    return
                yield piece
        finally:
            fh.close()

    def _read_error(self, key: str, exc: OSError) -> StoreError:
        """A failed read as a StoreError; a missing object is not retried."""
        if isinstance(exc, FileNotFoundError):
            return StoreError(f"no object {key} in {self.uri}", reason="not_found", retryable=False)
        return StoreError(f"reading {key} from {self.uri} failed: {exc}")

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        def scan() -> list[ObjectInfo]:
            # Walk only the directory the prefix names, then filter on the rest of the prefix.
            base_rel, _, _ = prefix.rpartition("/")
            base = self.root / base_rel if base_rel else self.root
            if not base.is_dir():
                return []
            out = []
            for path in base.rglob("*"):
                if path.name.startswith(_TMP) or not path.is_file():
                    continue
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    st = path.stat()
                    out.append(ObjectInfo(key=key, size=st.st_size, last_modified=st.st_mtime))
            out.sort(key=lambda o: o.key)
            return out

        for info in await asyncio.to_thread(scan):
            yield info

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def close(self) -> None:
        return None
