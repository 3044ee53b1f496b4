"""What data quality found in one window: its profile, statistics.json and every check's
result (``analyzer.evaluation``), typed; its files are documents of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.evaluation import Evaluation, Violation
from analyzer.profile import Profile


@dataclass(frozen=True)
class DataResult:
    """A window's data quality: None/empty where the window held no rows or checks were off."""

    window: Profile | None = field(default=None, repr=False)  # the window's profile (in memory)
    statistics: dict[str, Any] | None = (
        None  # statistics.json (SageMaker's document, written as is)
    )
    evaluation: Evaluation | None = None  # every feature's measures and decision (drift.json)
    error: str = ""  # the checks raised (the run fails)

    @property
    def violations(self) -> list[Violation]:
        """constraint_violations.json's entries."""
        return self.evaluation.violations if self.evaluation is not None else []
