"""Errors of feature-attribution computation.

    AnalyzerError (analyzer.errors)
    ├── AttributionError (also ValueError)   unusable inputs or config: shapes, NaN, options
    └── ModelCallError                       the model server could not score rows
        └── ModelResponseError               it answered, but not with readable scores

``ModelCallError`` carries the URL, and the HTTP status when there was one; it is raised after
the configured retries, so a caller gives up on this run's attributions rather than retrying.
"""

from __future__ import annotations

from analyzer.errors import AnalyzerError


class AttributionError(AnalyzerError, ValueError):
    """Attribution inputs or settings that cannot be used; the message says which and why."""


class ModelCallError(AnalyzerError):
    """Scoring rows on the model server failed (after retries)."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ModelResponseError(ModelCallError):
    """The model server answered 2xx, but the scores could not be read from the body."""
