"""The one error of model-quality computation.

    AnalyzerError (analyzer.errors)      ValueError
    └──────────────── QualityError ────────┘

``QualityError`` is a ``ValueError`` (bad input values: empty or misaligned arrays, missing
labels, an unknown problem type, a malformed constraints file) and an ``AnalyzerError``, so the
analyzer CLI reports it like every other deliberate error: the message alone, exit status 1.
"""

from __future__ import annotations

from analyzer.errors import AnalyzerError


class QualityError(AnalyzerError, ValueError):
    """Model-quality inputs or files that cannot be used; the message says which and why."""
