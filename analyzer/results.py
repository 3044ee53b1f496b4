"""What a monitoring run found: its run-level facts (status, counts, timing), each section's and
comparison stage's result (``RunResult``), and ``run.json`` (:func:`run_summary`). The job fills
it; reports, metrics and the comparison stages read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from analyzer.payloads import ParseStats
from analyzer.window import ReadStats, Window

COMPLETED, WITH_VIOLATIONS, NO_DATA, FAILED = (
    "Completed",
    "CompletedWithViolations",
    "NoData",
    "Failed",
)


@dataclass
class RunResult:
    endpoint: str
    variant: str
    window: Window
    model: str = ""
    status: str = COMPLETED
    rows: int = 0
    read: ReadStats = field(default_factory=ReadStats)
    parse: ParseStats = field(default_factory=ParseStats)
    report_prefix: str = ""
    duration_seconds: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    custom: dict[str, Any] = field(default_factory=dict)  # numbers a post-analytics hook added
    sections: dict[str, Any] = field(default_factory=dict)  # each section's result, by name
    violations_by_section: dict[str, int] = field(default_factory=dict)  # in the order they ran
    comparisons: dict[str, Any] = field(default_factory=dict)  # each comparison stage's, by name


def run_summary(result: RunResult) -> dict[str, Any]:
    """run.json: what a run found, also the post-analytics hook's argument."""
    by_section = dict(result.violations_by_section)
    return {
        "endpoint": result.endpoint,
        "variant": result.variant,
        "target_model": result.model,
        "start_time": result.window.start.astimezone(dt.UTC).isoformat(),
        "end_time": result.window.end.astimezone(dt.UTC).isoformat(),
        "status": result.status,
        "error": result.error,
        "rows": result.rows,
        "objects": result.read.objects,
        "bad_objects": result.read.bad_objects,
        "bad_lines": result.read.bad_lines,
        "unparsed_records": result.parse.failed,
        "unparsed_by_reason": result.parse.reasons,
        "violations": sum(by_section.values()),
        "violations_by_section": by_section,
        "custom": result.custom,
    }
