"""Fail any async test whose event loop was blocked by one callback for longer than a threshold.

The sidecar's promise is that capture never slows serving, and the analyzer's HTTP server answers
while a run is in progress: both break silently when a coroutine calls something blocking (a file
read, a sync HTTP call, a long numpy pass). asyncio's debug mode already times every callback and
logs the slow ones; this plugin turns those log lines into test failures. Debug mode also raises on
loop calls made from a foreign thread, another class of bug worth failing on.

The threshold (``MODELTAP_TEST_LOOP_BLOCK_SECONDS``, default 1 s) is far above any callback of a
healthy loop, and high enough that a descheduled process on a loaded 2-core CI machine does not
trip it. A test that blocks on purpose can opt out with ``@pytest.mark.allow_loop_blocking``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import pytest

THRESHOLD_SECONDS = float(os.environ.get("MODELTAP_TEST_LOOP_BLOCK_SECONDS", "1.0"))


class _SlowCallbacks(logging.Handler):
    """Collects asyncio's "Executing <handle> took N seconds" records."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Executing %s took %.3f seconds":
            self.messages.append(record.getMessage())


@pytest.fixture
async def _loop_block_guard(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    was_debug, was_threshold = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = THRESHOLD_SECONDS
    try:
        yield
    finally:
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_threshold
        logger.removeHandler(handler)
    if handler.messages and request.node.get_closest_marker("allow_loop_blocking") is None:
        pytest.fail(
            f"the event loop was blocked for more than {THRESHOLD_SECONDS} s:\n  "
            + "\n  ".join(handler.messages),
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_loop_blocking: the test blocks its event loop on purpose"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every coroutine test (pytest-asyncio marks them in auto mode) gets the guard."""
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker("asyncio") is not None:
            item.fixturenames.insert(0, "_loop_block_guard")
