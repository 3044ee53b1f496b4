"""The loop-blocking guard fails a test that blocks its event loop, and only such a test."""

from __future__ import annotations

import pytest

from harness.procs import REPO

INNER = """
import asyncio
import time

import pytest

pytest_plugins = ["tests.support.loop_guard"]


async def test_blocks() -> None:
    time.sleep(0.3)


async def test_awaits() -> None:
    await asyncio.sleep(0.3)


@pytest.mark.allow_loop_blocking
async def test_blocks_on_purpose() -> None:
    time.sleep(0.3)
"""


def test_a_blocking_call_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTAP_TEST_LOOP_BLOCK_SECONDS", "0.1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_inner=INNER)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-o", "timeout=60")
    # The guard fails the test in its teardown: one error, the other two pass.
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["ERROR*test_blocks - Failed: the event loop was blocked*"])
