"""Model-quality constraints: suggested from baseline statistics, checked against a window's.

The constraints file (docs/formats.md §5)::

    {"version": 0.0,
     "binary_classification_constraints": {
         "accuracy": {"threshold": 0.87, "comparison_operator": "LessThanThreshold"},
         "false_positive_rate": {"threshold": 0.09, "comparison_operator": "GreaterThanThreshold"}}}

``LessThanThreshold`` is a violation when the window's value is below the threshold (quality
metrics: accuracy, recall, precision, rates of correct answers, F-scores, auc, au_prc, r2);
``GreaterThanThreshold`` when above (mae, mse, rmse, false positive and negative rates). The
``_best_constant_classifier`` metrics describe the labels, not the model, and are not
constrained; nor are curves, confusion matrices and ``per_class``.

Thresholds are the baseline value moved by a margin, so that a window drawn like the baseline
rarely fires:

* With a standard deviation ``sd`` in the statistics (n >= 200 rows), margin =
  ``q * 2 * sd * sqrt(1 + n / window_rows)``. The factor 2 undoes SageMaker's subsampling:
  80% subsamples of n rows vary by about half the metric's sampling deviation over n rows
  (finite-population factor sqrt(0.2 / 0.8)). The square root adds the window's own deviation
  (window_rows rows; the baseline's n when not given) to the baseline's. ``q`` is the Student-t
  quantile with 4 degrees of freedom at the normal tail of ``sigmas`` (default 3, so q = 6.62):
  a deviation from 5 subsamples is itself uncertain (about one baseline in eight understates
  it by 40% or more). Simulated with 60 baselines and 300 clean windows of 5,000 rows each, a
  plain 3 x the deviation fired on 4-9% of clean windows (binary, multiclass, regression),
  the t quantile on 0-1.3%.
* Otherwise (no deviation, or 0) a relative ``slack`` (default 0.1), chosen so that related
  metrics move together: quality metrics in [0, 1] may fall to ``v * (1 - slack)``; error rates
  may rise to ``v + slack * (1 - v)`` (the complementary rate falling by the slack); mae and
  rmse to ``v * (1 + slack)``, mse to ``v * (1 + slack)**2`` and r2 to ``1 - (1 - v) * (1 +
  slack)**2`` (all three the same rise of the error). A perfect baseline (mae 0) tolerates no
  error at all in this mode.

Thresholds are bounded to the metric's range ([0, 1], errors >= 0, r2 <= 1). Metrics that are
absent or NaN in the baseline get no constraint.

``check`` returns SageMaker's model-quality violations, in the order of the constraints::

    {"constraint_check_type": "LessThanThreshold", "metric_name": "accuracy",
     "description": "Metric accuracy with 0.62 was LessThanThreshold '0.8'"}

A constrained metric that is absent or NaN in the window (auc without scores, recall without
positives) cannot be judged and yields no violation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from scipy.stats import norm, t

from analyzer.quality.errors import QualityError
from analyzer.quality.labels import ProblemType
from analyzer.quality.metrics import STD_SAMPLES

Operator = Literal["LessThanThreshold", "GreaterThanThreshold"]
LESS: Operator = "LessThanThreshold"
GREATER: Operator = "GreaterThanThreshold"
OPERATORS: tuple[Operator, ...] = (LESS, GREATER)

DEFAULT_SIGMAS = 3.0
DEFAULT_SLACK = 0.1

_UNIT = (0.0, 1.0)
_ERROR = (0.0, math.inf)
_R2 = (-math.inf, 1.0)

# metric -> (operator, range); the order is the order of the written constraints.
CONSTRAINED: dict[ProblemType, dict[str, tuple[Operator, tuple[float, float]]]] = {
    ProblemType.REGRESSION: {
        "mae": (GREATER, _ERROR),
        "mse": (GREATER, _ERROR),
        "rmse": (GREATER, _ERROR),
        "r2": (LESS, _R2),
    },
    ProblemType.BINARY: {
        "recall": (LESS, _UNIT),
        "precision": (LESS, _UNIT),
        "accuracy": (LESS, _UNIT),
        "true_positive_rate": (LESS, _UNIT),
        "true_negative_rate": (LESS, _UNIT),
        "false_positive_rate": (GREATER, _UNIT),
        "false_negative_rate": (GREATER, _UNIT),
        "auc": (LESS, _UNIT),
        "au_prc": (LESS, _UNIT),
        "f0_5": (LESS, _UNIT),
        "f1": (LESS, _UNIT),
        "f2": (LESS, _UNIT),
    },
    ProblemType.MULTICLASS: {
        name: (LESS, _UNIT)
        for name in (
            "accuracy",
            "weighted_recall",
            "weighted_precision",
            "weighted_f0_5",
            "weighted_f1",
            "weighted_f2",
        )
    },
}


def constraints_key(problem: ProblemType) -> str:
    """``binary_classification_metrics`` -> ``binary_classification_constraints``."""
    return problem.section.removesuffix("_metrics") + "_constraints"


def problem_of(statistics: Mapping[str, Any]) -> ProblemType:
    """The problem type whose metrics section the statistics hold (exactly one)."""
    found = [p for p in ProblemType if isinstance(statistics.get(p.section), Mapping)]
    if len(found) != 1:
        expected = ", ".join(p.section for p in ProblemType)
        raise QualityError(
            f"model-quality statistics need exactly one of {expected}; "
            f"found {[p.section for p in found] or 'none'}"
        )
    return found[0]


def _number(x: Any) -> float | None:
    """A finite float, or None for "NaN", None, missing and non-numbers."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _slacked(name: str, op: Operator, value: float, slack: float) -> float:
    if name == "mse":
        return value * (1.0 + slack) ** 2
    if name == "r2":
        return 1.0 - (1.0 - value) * (1.0 + slack) ** 2
    if name in ("mae", "rmse"):
        return value * (1.0 + slack)
    if op == GREATER:
        return value + slack * (1.0 - value)
    return value * (1.0 - slack)


def suggest_constraints(
    statistics: Mapping[str, Any],
    *,
    sigmas: float = DEFAULT_SIGMAS,
    slack: float = DEFAULT_SLACK,
    window_rows: int | None = None,
) -> dict[str, Any]:
    """Constraints for the baseline ``statistics``, widened as the module docstring says."""
    if sigmas < 0 or not 0.0 <= slack < 1.0:
        raise QualityError(f"sigmas must be >= 0 and slack within [0, 1); got {sigmas}, {slack}")
    if window_rows is not None and window_rows < 1:
        raise QualityError(f"window_rows must be at least 1, got {window_rows}")
    problem = problem_of(statistics)
    metrics = statistics[problem.section]
    q = float(t.ppf(norm.cdf(sigmas), STD_SAMPLES - 1))
    n = _number((statistics.get("dataset") or {}).get("item_count"))
    out: dict[str, Any] = {}
    for name, (op, (lo, hi)) in CONSTRAINED[problem].items():
        entry = metrics.get(name)
        value = _number(entry.get("value")) if isinstance(entry, Mapping) else None
        if value is None:
            continue
        sd = _number(entry.get("standard_deviation")) if isinstance(entry, Mapping) else None
        if sd and n:
            margin = q * 2.0 * sd * math.sqrt(1.0 + n / (window_rows or n))
            threshold = value - margin if op == LESS else value + margin
        else:
            threshold = _slacked(name, op, value, slack)
        out[name] = {"threshold": min(max(threshold, lo), hi), "comparison_operator": op}
    return {"version": 0.0, constraints_key(problem): out}


def _constraint(name: str, c: Any) -> tuple[float, Operator]:
    if not isinstance(c, Mapping):
        raise QualityError(f"constraint {name!r} must be an object, got {c!r}")
    op = c.get("comparison_operator")
    if op not in OPERATORS:
        raise QualityError(
            f"constraint {name!r}: unknown comparison_operator {op!r}; expected one of "
            f"{', '.join(OPERATORS)}"
        )
    threshold = c.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise QualityError(f"constraint {name!r}: threshold must be a number, got {threshold!r}")
    return float(threshold), op


def check(statistics: Mapping[str, Any], constraints: Mapping[str, Any]) -> list[dict[str, str]]:
    """The window ``statistics``' violations of ``constraints``, SageMaker's violation dicts."""
    problem = problem_of(statistics)
    key = constraints_key(problem)
    section = constraints.get(key)
    if not isinstance(section, Mapping):
        present = [k for k in constraints if str(k).endswith("_constraints")]
        raise QualityError(
            f"the constraints have no {key} section for {problem.value} statistics "
            f"(sections present: {present or 'none'})"
        )
    metrics = statistics[problem.section]
    violations = []
    for name, c in section.items():
        threshold, op = _constraint(name, c)
        entry = metrics.get(name)
        value = _number(entry.get("value")) if isinstance(entry, Mapping) else None
        if value is None:
            continue
        if (value < threshold) if op == LESS else (value > threshold):
            violations.append(
                {
                    "constraint_check_type": op,
                    "description": f"Metric {name} with {value!r} was {op} '{threshold!r}'",
                    "metric_name": name,
                }
            )
    return violations
