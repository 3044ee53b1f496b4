"""The interface of a comparison stage: what runs after every target of a window ran and reads
their results together (the variants of an endpoint compared with each other: ``analyzer.variants``).

``compare`` gets every (target, result) of the window and returns one result per run (None: none
for that run); ``analyzer.monitor`` keeps it in ``RunResult.comparisons[name]`` and from then on
only the stage reads it: ``report_files`` are written under the run's prefix, ``html`` is its
part of report.html, ``beside`` the other windows a section draws beside its own (data quality's
charts) and ``metrics`` its Prometheus families. Registered in ``analyzer.registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from prometheus_client.core import Metric

from analyzer.report_html import Fragment
from analyzer.results import RunResult
from analyzer.section import Beside, Ident, Limits
from analyzer.targets import Target

C = TypeVar("C")


class Comparison(Protocol[C]):
    """One comparison across the runs of a window; ``C`` is its per-run result type."""

    name: str  # RunResult.comparisons key

    async def compare(self, runs: Sequence[tuple[Target, RunResult]]) -> list[C | None]:
        """One result per run, in order (a failure is logged and leaves None: runs stand)."""
        ...

    def report_files(self, result: C) -> list[tuple[str, object]]: ...

    def html(self, result: C) -> Fragment | None:
        """Its part of report.html, if it has one for this run."""
        ...

    def beside(self, result: C) -> Mapping[str, Beside]:
        """Other windows (by variant) drawn beside this run's own."""
        ...

    def metrics(self, results: Mapping[Ident, C], limits: Limits) -> Iterable[Metric]:
        """Its families over every target's latest result (all, also when empty)."""
        ...
