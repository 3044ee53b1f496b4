"""The one error of bias computation.

    AnalyzerError (analyzer.errors)      ValueError
    └────────────────── BiasError ─────────┘

``BiasError`` is raised for inputs that cannot be used at all: misaligned or empty arrays, a
facet that is neither values nor a threshold, an unknown metric, a malformed constraints
document. A metric that is merely undefined on good inputs (an empty facet, no labels) is not an
error: the report carries it as ``"value": null`` with an ``"error"`` text, as Clarify does.
"""

from __future__ import annotations

from analyzer.errors import AnalyzerError


class BiasError(AnalyzerError, ValueError):
    """Bias inputs or files that cannot be used; the message says which and why."""
