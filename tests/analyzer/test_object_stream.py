"""An object's pieces pulled by a worker thread from the event loop (analyzer.object_stream)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from analyzer.object_stream import thread_pieces, whole
from modeltap.core.store.local import LocalStore


def test_a_worker_thread_reads_the_pieces_and_may_stop_early(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = os.urandom(3 * (1 << 20) + 5)

    async def run() -> tuple[bytes, bytes, int]:
        await store.put("ep/a.jsonl", data, content_type="x")
        pieces = thread_pieces(store, "ep/a.jsonl", asyncio.get_running_loop())

        def early() -> bytes:
            it = pieces()
            first = next(it)
            it.close()  # the store's stream is closed from the thread, through the loop
            return first

        first = await asyncio.to_thread(early)
        fds = len(os.listdir("/proc/self/fd"))
        got = await asyncio.to_thread(whole, pieces)  # opened again, read to the end
        return first, got, len(os.listdir("/proc/self/fd")) - fds

    first, got, leaked = asyncio.run(run())
    assert first == data[: 1 << 20]
    assert got == data
    assert leaked == 0
