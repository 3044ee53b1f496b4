"""Errors raised by the analyzer.

    ModeltapError                    (modeltap.core.errors)
    └── AnalyzerError                anything the analyzer refuses to do
        ├── DataError                the input data is unusable; names file, line and column
        ├── ProfileError             profiles that cannot be combined (different edges, k, types)
        └── BaselineFormatError      a statistics.json / constraints.json that does not follow the format

The CLI maps AnalyzerError to exit status 1 and prints only the message, so every message must
stand on its own: what was wrong, where (file, line, column), and what to do about it.
"""

from __future__ import annotations

from modeltap.core.errors import ModeltapError


class AnalyzerError(ModeltapError):
    """Base of the analyzer's deliberate errors."""


class DataError(AnalyzerError):
    """Input data that cannot be profiled; ``file``, ``line`` and ``column`` locate it when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = []
        if file is not None:
            where.append(file)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.file = file
        self.line = line
        self.column = column


class ProfileError(AnalyzerError):
    """Two profiles (or a profile and a chunk) that do not fit together."""


class BaselineFormatError(AnalyzerError):
    """A baseline file that does not follow the documented statistics/constraints format."""
