"""What ``modeltap baseline`` builds: the baseline of the first registered section whose options
ask for it (``Section.baseline``, ``analyzer.baseline_builder``), else the data baseline.

A ConfigError is a bad option (exit 2), another ModeltapError unusable data (exit 1).
"""

from __future__ import annotations

from analyzer.baseline_builder import BaselineBuilder
from analyzer.baseline_job import Job
from analyzer.data_quality.baseline import DATA_BASELINE
from analyzer.registry import SECTIONS


def builders() -> list[BaselineBuilder]:
    """Every registered section's baseline builder, in registry order."""
    return [s.baseline for s in SECTIONS if s.baseline is not None]


def run(job: Job) -> int:
    """The baseline the options ask for, written to ``job.output``; exit status 0."""
    chosen = next((b for b in builders() if b.wanted(job.tables)), DATA_BASELINE)
    return chosen.build(job)
