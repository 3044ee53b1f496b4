"""Bias drift: Clarify's post-training bias metrics per facet, and their drift from a baseline.

* ``metrics.compute``: the post-training bias report of one dataset (Clarify's
  ``analysis.json`` layout), optionally with bootstrap intervals.
* ``constraints.suggest_constraints`` / ``constraints.check``: allowed ranges from a baseline
  report, and a window's ``bias_drift_check`` violations of them.

Pure computation over numpy arrays: reading captures and labels, and writing files, is the
job's business.
"""

from __future__ import annotations

from analyzer.bias.constraints import check, suggest_constraints, violations_file
from analyzer.bias.errors import BiasError
from analyzer.bias.metrics import METRIC_NAMES, Facet, compute, flip_test

__all__ = [
    "METRIC_NAMES",
    "BiasError",
    "Facet",
    "check",
    "compute",
    "flip_test",
    "suggest_constraints",
    "violations_file",
]
