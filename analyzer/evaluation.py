"""What the data-quality checks found (``analyzer.checks.evaluate``): each feature's measures,
statistical decision and violations, and the whole window's ``Evaluation``, typed; drift.json
and constraint_violations.json are their documents (``to_dict``, ``violations_json``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from analyzer.drift.decide import Correction, Decision
from analyzer.drift.measures import DriftMeasures
from analyzer.monitoring_config import MonitoringConfig

CheckType = Literal[
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
]


@dataclass(frozen=True)
class Violation:
    feature_name: str
    constraint_check_type: CheckType
    description: str

    def to_dict(self) -> dict[str, str]:
        return {
            "feature_name": self.feature_name,
            "constraint_check_type": self.constraint_check_type,
            "description": self.description,
        }


@dataclass
class FeatureResult:
    name: str
    baseline_type: str
    window_type: str | None
    """The type the window's own values would be inferred as (None when absent)."""
    rows: int
    present: int
    completeness: float
    expected_completeness: float | None
    type_match: float
    expected_type_match: float | None
    completeness_pvalue: float | None = None
    """The one-sided test's p-value when the completeness is the baseline's own share (else None)."""
    completeness_decision: Decision | None = None
    measures: DriftMeasures | None = None
    decision: Decision | None = None
    violations: list[Violation] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return self.decision is not None and self.decision.drift


@dataclass
class Evaluation:
    config: MonitoringConfig
    alpha: float
    correction: Correction
    window_rows: int
    features: dict[str, FeatureResult]
    violations: list[Violation]

    def violations_json(self) -> dict[str, Any]:
        """constraint_violations.json."""
        return {"violations": [v.to_dict() for v in self.violations]}

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data (NaN becomes None)."""
        out: dict[str, Any] = _clean(
            {
                "alpha": self.alpha,
                "correction": self.correction,
                "window_rows": self.window_rows,
                "monitoring_config": asdict(self.config),
                "features": {k: asdict(v) for k, v in self.features.items()},
                "violations": [v.to_dict() for v in self.violations],
            }
        )
        return out


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x
