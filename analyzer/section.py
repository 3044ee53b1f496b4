"""The interface every monitoring kind implements beside data quality: a ``Section``.

A run (``analyzer.job``) profiles its window, checks it against the baseline, then hands each
section registered in ``analyzer.registry`` that is configured for the target a
:class:`SectionInput`. The section returns its own typed result (or None: nothing to report for
this window); the job keeps it in ``RunResult.sections[name]`` and from then on only the
section reads it: its :class:`Outcome` sets the run's status, ``report_files`` are written under
``{run}/...``, ``html`` is its part of report.html and ``metrics`` its Prometheus families.
A new kind is one package holding a ``Section`` plus one line in ``analyzer.registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from prometheus_client.core import Metric

from analyzer.targets import Target
from analyzer.window import Window
from modeltap.core.store.base import Store

Ident = tuple[str, str, str]  # (endpoint, variant, model): the labels of every per-target metric
R = TypeVar("R")


@dataclass(frozen=True)
class SectionInput:
    """What a section may read of one run: the stores, the target and the window."""

    captures: Store  # the capture store, or a batch target's dataset store (target.batch)
    labels: Store | None  # the ground-truth store, when the target has one
    target: Target
    window: Window
    window_has_data: bool  # the data-quality profile of the window holds rows


@dataclass(frozen=True)
class Outcome:
    """What a section's result means for the run's status."""

    violations: int = 0  # counted in run.json's violations_by_section; > 0: WithViolations
    problem: str = ""  # not '': the run fails, its error names the section and this
    has_data: bool = False  # results although the window held no rows: NoData becomes Completed


@dataclass(frozen=True)
class Limits:
    """Bounds on metric labels (the exporter's ``max_features`` and ``max_classes``)."""

    max_features: int = 200
    max_classes: int = 20


class Section(Protocol[R]):
    """One monitoring kind; ``R`` is its result type."""

    name: str  # RunResult.sections key, run.json's violations_by_section key
    title: str  # its heading in report.html

    def configured(self, target: Target) -> bool:
        """Whether the target asks for this section (its configuration is on the target)."""
        ...

    async def run(self, source: SectionInput) -> R | None:
        """The section's result for the window, or None when there is nothing to report."""
        ...

    def failed(self, error: str) -> R:
        """The result of a run that raised ``error`` (the other sections' results stand)."""
        ...

    def outcome(self, result: R) -> Outcome: ...

    def violations(self, result: R) -> Sequence[Mapping[str, Any]]:
        """The result's violations, listed with the run's others in report.html."""
        ...

    def report_files(self, result: R) -> list[tuple[str, object]]:
        """(path under the run's prefix, JSON document) of each file the section writes."""
        ...

    def html(self, result: R) -> str:
        """Its ``<section>`` of report.html."""
        ...

    def metrics(self, results: Mapping[Ident, R], limits: Limits) -> Iterable[Metric]:
        """Its metric families over the latest result of every target (all families, also
        when empty, so /metrics always lists them)."""
        ...
