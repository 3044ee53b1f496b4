"""LocalStore and the destination helpers of modeltap.core.store."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from modeltap.core.errors import ConfigError, StoreConfigError, StoreError
from modeltap.core.store import join_key, open_store, split_destination
from modeltap.core.store.local import LocalStore
from sidecar.config import StoreConfig


async def _keys(store: LocalStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


async def test_put_get_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    await store.check()
    data = bytes(range(256)) * 10
    await store.put("ep/v/2026/11/23/09/a.jsonl", data, content_type="application/jsonlines")
    assert await store.get("ep/v/2026/11/23/09/a.jsonl") == data
    assert (tmp_path / "root/ep/v/2026/11/23/09/a.jsonl").read_bytes() == data
    assert store.uri == f"file://{tmp_path / 'root'}"
    await store.close()


async def test_list_in_key_order_with_prefix_filter(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ["b/1", "a/2", "a/10", "a/1", "ab", "c/d/e"]:
        await store.put(key, key.encode(), content_type="text/plain")
    assert await _keys(store) == ["a/1", "a/10", "a/2", "ab", "b/1", "c/d/e"]
    assert await _keys(store, "a/") == ["a/1", "a/10", "a/2"]
    assert await _keys(store, "a") == ["a/1", "a/10", "a/2", "ab"]
    assert await _keys(store, "a/1") == ["a/1", "a/10"]
    assert await _keys(store, "c/d/") == ["c/d/e"]
    assert await _keys(store, "nothing/") == []
    infos = [info async for info in store.list("ab")]
    assert infos[0].size == 2
    assert infos[0].last_modified == pytest.approx((tmp_path / "ab").stat().st_mtime)


async def test_list_skips_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put("a/x", b"1", content_type="text/plain")
    (tmp_path / "a/.tmp-1234-y").write_bytes(b"half")
    assert await _keys(store) == ["a/x"]


async def test_delete_and_missing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put("k", b"v", content_type="text/plain")
    await store.delete("k")
    await store.delete("k")  # missing is not an error
    with pytest.raises(StoreError) as info:
        await store.get("k")
    assert info.value.reason == "not_found"
    assert not info.value.retryable


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a//b", "../x", "a/../../x", "./a", "a/"])
async def test_invalid_keys(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "root")
    for call in (
        store.put(key, b"x", content_type="text/plain"),
        store.get(key),
        store.delete(key),
    ):
        with pytest.raises(StoreError) as info:
            await call
        assert info.value.reason == "client_error"
        assert not info.value.retryable
    assert not (tmp_path / "x").exists()


async def test_put_replaces_atomically(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put("k", b"old" * 1000, content_type="text/plain")
    with open(tmp_path / "k", "rb") as old:
        await store.put("k", b"new", content_type="text/plain")
        # Replaced by a rename: the open file is still the whole old version.
        assert os.fstat(old.fileno()).st_ino != (tmp_path / "k").stat().st_ino
        assert old.read() == b"old" * 1000
    await store.put("k", b"old" * 1000, content_type="text/plain")

    seen: set[bytes] = set()
    stop = False

    def reader() -> None:
        while not stop:
            seen.add((tmp_path / "k").read_bytes())

    task = asyncio.create_task(asyncio.to_thread(reader))
    for _ in range(20):
        await store.put("k", b"new" * 1000, content_type="text/plain")
        await store.put("k", b"old" * 1000, content_type="text/plain")
    stop = True
    await task
    # A reader sees one whole version or the other, never a mix or an empty file.
    assert seen <= {b"old" * 1000, b"new" * 1000}
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temporary files left


async def test_check_refuses_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    store = LocalStore(blocker / "sub")
    with pytest.raises(StoreConfigError) as info:
        await store.check()
    assert str(blocker / "sub") in str(info.value)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/prefix", ("s3", "bucket", "prefix")),
        ("s3://bucket/a/b/", ("s3", "bucket", "a/b")),
        ("s3://bucket//a//", ("s3", "bucket", "a")),
        ("s3://bucket", ("s3", "bucket", "")),
        ("s3://bucket/", ("s3", "bucket", "")),
        ("file:///var/lib/x", ("file", "/var/lib/x", "")),
        ("file:///var/lib/x/", ("file", "/var/lib/x", "")),
        ("file://localhost/tmp/a%20b", ("file", "/tmp/a b", "")),
        ("file:///", ("file", "/", "")),
    ],
)
def test_split_destination(uri: str, expected: tuple[str, str, str]) -> None:
    assert split_destination(uri) == expected


@pytest.mark.parametrize(
    "uri", ["s3:///prefix", "file://host/dir", "file:relative", "http://x/y", "/plain/path", ""]
)
def test_split_destination_rejects(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        split_destination(uri)
    assert repr(uri) in str(info.value)


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        ("p", "k", "p/k"),
        ("p/q", "a/b", "p/q/a/b"),
        ("p", "/k", "p/k"),
        ("p", "//k", "p/k"),
        ("", "k", "k"),
        ("", "/k", "k"),
    ],
)
def test_join_key(prefix: str, key: str, expected: str) -> None:
    assert join_key(prefix, key) == expected


async def test_open_store(tmp_path: Path) -> None:
    local = open_store(f"file://{tmp_path}")
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path

    from modeltap.core.store.s3 import S3Store

    s3 = open_store("s3://bucket/some/prefix/", StoreConfig(region="eu-west-1"))
    assert isinstance(s3, S3Store)  # no connection is made until first use
    assert (s3.bucket, s3.prefix, s3.uri) == ("bucket", "some/prefix", "s3://bucket/some/prefix/")
    await s3.close()


def test_an_s3_destination_needs_its_settings() -> None:
    # The core declares no S3 defaults of its own: each process passes the settings it declared.
    with pytest.raises(
        ConfigError, match=r"'s3://bucket/p': an s3:// destination needs S3 settings"
    ):
        open_store("s3://bucket/p")


async def test_get_stream_yields_the_object_in_pieces(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = os.urandom(10_000)
    await store.put("ep/a.jsonl", data, content_type="application/jsonlines")
    got = [piece async for piece in store.get_stream("ep/a.jsonl", 4096)]
    assert [len(p) for p in got] == [4096, 4096, 1808]
    assert b"".join(got) == data
    with pytest.raises(StoreError) as info:
        _ = [piece async for piece in store.get_stream("ep/missing.jsonl")]
    assert info.value.reason == "not_found"
