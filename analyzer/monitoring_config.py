"""constraints.json's ``monitoring_config``, flattened into one typed object (SageMaker's
defaults), with a feature's ``monitoringConfigOverrides`` applied by :meth:`updated`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from analyzer.drift import linf
from analyzer.errors import AnalyzerError


def _enabled(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("Enabled", "enabled"):
        return True
    if value in ("Disabled", "disabled"):
        return False
    raise AnalyzerError(f"{key} must be Enabled or Disabled, got {value!r}")


@dataclass(frozen=True)
class MonitoringConfig:
    """constraints.json ``monitoring_config``, flattened; defaults are SageMaker's."""

    evaluate_constraints: bool = True
    emit_metrics: bool = True
    datatype_check_threshold: float = 0.1
    domain_content_threshold: float = 0.1
    perform_comparison: bool = True
    comparison_threshold: float = 0.1
    comparison_method: linf.Method = "Robust"
    categorical_comparison_threshold: float | None = None
    """None: the same as ``comparison_threshold``."""
    categorical_drift_method: Literal["LInfinity", "ChiSquared"] = "LInfinity"

    def __post_init__(self) -> None:
        if self.comparison_method not in ("Simple", "Robust"):
            raise AnalyzerError(
                f"comparison_method must be Simple or Robust, got {self.comparison_method!r}"
            )
        if self.categorical_drift_method not in ("LInfinity", "ChiSquared"):
            raise AnalyzerError(
                "categorical_drift_method must be LInfinity or ChiSquared, "
                f"got {self.categorical_drift_method!r}"
            )

    @property
    def categorical_threshold(self) -> float:
        if self.categorical_comparison_threshold is None:
            return self.comparison_threshold
        return self.categorical_comparison_threshold

    def updated(self, doc: Mapping[str, Any]) -> MonitoringConfig:
        """A copy with the keys of a monitoring_config (or an override) applied."""
        flat = dict(doc)
        nested = flat.pop("distribution_constraints", None) or {}
        flat.update(nested)
        kw: dict[str, Any] = {}
        for key, value in flat.items():
            if key in ("evaluate_constraints", "emit_metrics", "perform_comparison"):
                kw[key] = _enabled(value, key)
            elif key in (
                "datatype_check_threshold",
                "domain_content_threshold",
                "comparison_threshold",
                "categorical_comparison_threshold",
            ):
                kw[key] = float(value)
            elif key in ("comparison_method", "categorical_drift_method"):
                kw[key] = str(value)
        current = asdict(self)
        current.update(kw)
        return MonitoringConfig(**current)

    @classmethod
    def from_constraints(cls, constraints: Mapping[str, Any]) -> MonitoringConfig:
        return cls().updated(constraints.get("monitoring_config") or {})
