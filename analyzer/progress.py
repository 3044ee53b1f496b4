"""A one-line progress bar on a terminal: rows, rows per second, and percent and ETA by bytes.

Written by hand with ``\\r`` (no dependency). It draws only when the stream is a terminal (or when
forced), at most four times a second, and ends its line on ``finish``. ETA needs the total input
size, known for local files and store objects before reading starts.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """Report progress of one pass; ``update`` with cumulative rows and bytes."""

    def __init__(
        self,
        total_bytes: int | None = None,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval_seconds: float = 0.25,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total_bytes = total_bytes or None
        self.interval = interval_seconds
        self.label = ""
        self._start = time.monotonic()
        self._last = 0.0
        self._width = 0
        self.rows = 0
        self.bytes_done: int | None = None

    def start(self, label: str) -> None:
        self.label = label
        self.rows = 0
        self.bytes_done = None
        self._start = time.monotonic()
        self._last = 0.0

    def update(self, rows: int, bytes_done: int | None = None, *, force: bool = False) -> None:
        self.rows = rows
        self.bytes_done = bytes_done
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self._draw(self.line(rows, bytes_done, now - self._start))

    def line(self, rows: int, bytes_done: int | None, elapsed: float) -> str:
        rate = rows / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.label} {rows:,} rows", f"{rate:,.0f} rows/s"]
        if self.total_bytes and bytes_done is not None:
            frac = min(1.0, bytes_done / self.total_bytes)
            parts.append(f"{100 * frac:5.1f}%")
            if frac > 0:
                parts.append(f"ETA {_duration(elapsed * (1 - frac) / frac)}")
        parts.append(f"elapsed {_duration(elapsed)}")
        return "  ".join(parts)

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def finish(self) -> None:
        if self.enabled:
            self.update(self.rows, self.bytes_done, force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
