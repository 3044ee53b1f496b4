"""What a monitoring run found: its status, counts and section results (``RunResult``), and
``run.json`` (:func:`run_summary`). The job fills it; reports, metrics and the variant
comparison read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from analyzer.payloads import ParseStats
from analyzer.profile import Profile
from analyzer.registry import SECTIONS
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
    violations: list[dict[str, str]] = field(default_factory=list)
    statistics: dict[str, Any] | None = None
    report_prefix: str = ""
    duration_seconds: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    evaluation: dict[str, Any] | None = None  # every feature's measures and decision (drift.json)
    custom: dict[str, Any] = field(default_factory=dict)  # numbers a post-analytics hook added
    profile: Profile | None = field(default=None, repr=False)  # the window's profile (in memory)
    comparison: dict[str, Any] | None = None  # this variant against the reference (variants.json)
    reference_profile: Profile | None = field(default=None, repr=False)  # the reference's window
    sections: dict[str, Any] = field(default_factory=dict)  # each section's result, by name


def run_summary(result: RunResult) -> dict[str, Any]:
    """run.json: what a run found, also the post-analytics hook's argument."""
    by_section = {"data": len(result.violations)}
    for section in SECTIONS:
        if section.name in result.sections:
            by_section[section.name] = section.outcome(result.sections[section.name]).violations
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
