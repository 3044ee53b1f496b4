"""Suggested constraints.json from a baseline profile (docs/formats.md §3).

Per feature: ``inferred_type``; ``completeness``, the observed share of present values (the
completeness check then tests for a significant rise in the missing share, ``analyzer.checks``),
or that share minus a tolerance, which the check reads as a plain floor, as SageMaker does;
``num_constraints.is_non_negative`` for numeric features (true when the baseline minimum is >= 0);
``string_constraints.domains`` for String features with few distinct values (at most
``domain_max_values``, and only when the count is exact), and an empty ``monitoringConfigOverrides``.
``monitoring_config`` carries SageMaker's defaults: constraints evaluated and metrics emitted,
datatype and domain thresholds 0.1, distribution comparison on with threshold 0.1, the Robust
(KS-corrected) method, and LInfinity for categorical drift. Everything is meant to be edited by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from analyzer.errors import AnalyzerError
from analyzer.inference import InferredType
from analyzer.profile import Profile


@dataclass(frozen=True)
class ConstraintOptions:
    """Knobs of the suggestion; defaults are SageMaker's."""

    completeness_tolerance: float = 0.0
    """Subtracted from the observed completeness (0.0 keeps it as observed, as SageMaker does)."""
    domain_max_values: int = 20
    """String features with at most this many distinct values get a ``domains`` list."""
    comparison_threshold: float = 0.1
    comparison_method: Literal["Simple", "Robust"] = "Robust"
    categorical_comparison_threshold: float = 0.1
    categorical_drift_method: Literal["LInfinity", "ChiSquared"] = "LInfinity"
    datatype_check_threshold: float = 0.1
    domain_content_threshold: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.completeness_tolerance <= 1.0:
            raise AnalyzerError("completeness tolerance must be within [0, 1]")
        if self.domain_max_values < 0:
            raise AnalyzerError("domain_max_values must not be negative")


def _feature(profile: Profile, name: str, options: ConstraintOptions) -> dict[str, Any]:
    col = profile.columns[name]
    t = profile.inferred_type(name)
    rows = profile.item_count
    # Deequ's completeness: the share of non-null values, whatever their type (a value of the
    # wrong type is the data-type check's business, not a missing one).
    completeness = col.num_present / rows if rows else 0.0
    out: dict[str, Any] = {
        "name": name,
        "inferred_type": str(t),
        "completeness": round(max(0.0, completeness - options.completeness_tolerance), 6),
    }
    if t.is_numeric:
        out["num_constraints"] = {
            "is_non_negative": bool(col.numeric.count and col.numeric.min >= 0)
        }
    elif t is InferredType.STRING and col.strings is not None:
        s = col.strings
        if (
            s.distinct_exact
            and not col.text_values_missed
            and 0 < s.distinct_count <= options.domain_max_values
        ):
            out["string_constraints"] = {"domains": sorted(s.counts_dict())}
    out["monitoringConfigOverrides"] = {}
    return out


def suggest_constraints(
    profile: Profile, options: ConstraintOptions | None = None
) -> dict[str, Any]:
    """The constraints.json dict suggested by a baseline profile."""
    o = options or ConstraintOptions()
    return {
        "version": 0.0,
        "features": [_feature(profile, name, o) for name in profile.columns],
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": o.datatype_check_threshold,
            "domain_content_threshold": o.domain_content_threshold,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": o.comparison_threshold,
                "comparison_method": o.comparison_method,
                "categorical_comparison_threshold": o.categorical_comparison_threshold,
                "categorical_drift_method": o.categorical_drift_method,
            },
        },
    }
