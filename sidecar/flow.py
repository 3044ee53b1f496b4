"""Write flow control for the proxy's asyncio Protocols (client and model-server sides).

A transport calls ``pause_writing`` when its buffer passes the high-water mark and
``resume_writing`` when it drains; :meth:`WriteFlow.drain` is the future a writer awaits in
between (asyncio's ``FlowControlMixin`` without the streams machinery it brings).
"""

from __future__ import annotations

import asyncio


class WriteFlow:
    """Mixed into an ``asyncio.Protocol`` that has a ``loop`` attribute."""

    loop: asyncio.AbstractEventLoop
    _drain_waiter: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        if self._drain_waiter is None:
            self._drain_waiter = self.loop.create_future()

    def resume_writing(self) -> None:
        self.wake_drain()

    def wake_drain(self) -> None:
        """Release a writer waiting in :meth:`drain` (also when the connection is lost)."""
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_drained(self) -> None:
        """Return once the transport takes writes again (at once when it does)."""
        if self._drain_waiter is not None:
            await self._drain_waiter
