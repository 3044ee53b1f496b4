"""Model-quality monitoring: predictions joined with ground truth, SageMaker's statistics layout.

* ``metrics.compute``: regression, binary and multiclass statistics of one dataset.
* ``constraints.suggest_constraints`` / ``constraints.check``: thresholds from a baseline's
  statistics, and a window's violations of them.
* ``estimate``: confidence-based performance estimation of a binary classifier while its labels
  have not arrived, with an isotonic calibration map fitted on the baseline.

Pure computation over numpy arrays: reading captures and ground truth, and writing files, is the
job's business.
"""

from __future__ import annotations

from analyzer.quality.constraints import check, suggest_constraints
from analyzer.quality.errors import QualityError
from analyzer.quality.estimate import Calibration, estimate, fit_calibration
from analyzer.quality.labels import ProblemType
from analyzer.quality.metrics import compute

__all__ = [
    "Calibration",
    "ProblemType",
    "QualityError",
    "check",
    "compute",
    "estimate",
    "fit_calibration",
    "suggest_constraints",
]
