"""An object read in pieces by a worker thread while the event loop fetches them.

The window reader profiles an object on a worker thread (``asyncio.to_thread``); reading it
whole first (``Store.get``) made memory follow the object's size (418 MiB peak for 61 MB
objects). Here the thread pulls the pieces of ``Store.get_stream`` one at a time from the event
loop, so only a piece and the parser's chunk are held.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

from modeltap.core.store.base import Store

Pieces = Callable[[], Iterator[bytes]]
"""Opens an object afresh and yields its bytes in pieces (a reader may open it twice)."""

ObjectData = bytes | Pieces
"""An object's bytes, whole or as pieces."""


def whole(data: ObjectData) -> bytes:
    """The object's bytes at once (for readers that need them whole)."""
    return data if isinstance(data, bytes) else b"".join(data())


def thread_pieces(store: Store, key: str, loop: asyncio.AbstractEventLoop) -> Pieces:
    """``store.get_stream(key)`` for a worker thread: each piece is fetched on ``loop`` (which
    must be running and not waiting on this thread other than by ``await``)."""

    def pieces() -> Iterator[bytes]:
        stream = store.get_stream(key)
        try:
            while (
                piece := asyncio.run_coroutine_threadsafe(_next(stream), loop).result()
            ) is not None:
                yield piece
        finally:  # also when the reader stops early (a fallback re-opens the object)
            if not loop.is_closed():
                closing = asyncio.run_coroutine_threadsafe(stream.aclose(), loop)
                if not _on(loop):  # a collected generator may be closed on the loop itself
                    closing.result()

    return pieces


async def _next(stream: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
