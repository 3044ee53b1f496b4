"""The interface every monitoring kind implements: a ``Section``.

A run (``analyzer.job``) reads and profiles its window (the stage before the sections), then hands
each section registered in ``analyzer.registry`` that is configured for the target a
:class:`SectionInput`; data quality and drift (``analyzer.data_quality``) is the first of them. The section returns its own typed result (or None: nothing to report for
this window); the job keeps it in ``RunResult.sections[name]`` and from then on only the
section reads it: its :class:`Outcome` sets the run's status, ``report_files`` are written under
``{run}/...``, ``html`` is its part of report.html and ``metrics`` its Prometheus families.
A section with a configuration declares its ``[endpoints.<name>]`` table (``config_type``) and
turns it into what its runs read (``load``); one with a baseline declares its builder
(``analyzer.baseline_builder``).
A new kind is one package holding a ``Section`` plus one line in ``analyzer.registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from prometheus_client.core import Metric

from analyzer.baseline_builder import BaselineBuilder
from analyzer.checks import Evaluator
from analyzer.evaluation import Evaluation
from analyzer.profile import Profile
from analyzer.report_html import Fragment
from analyzer.targets import Target
from analyzer.window import Window
from modeltap.core.store.base import Store
from modeltap.core.store_config import StoreConnection

Ident = tuple[str, str, str]  # (endpoint, variant, model): the labels of every per-target metric
R = TypeVar("R")


@dataclass(frozen=True)
class SectionInput:
    """What a section may read of one run: the stores, the target and the window."""

    captures: Store  # the capture store, or a batch target's dataset store (target.batch)
    labels: Store | None  # the ground-truth store, when the target has one
    target: Target
    window: Window
    window_has_data: bool  # the window's profile holds rows
    profile: Profile | None = None  # the window's profile (the profile stage's), None: no rows
    observed: frozenset[str] = frozenset()  # the column names the window's records showed
    checks: Evaluator | None = None  # the data-quality checks to run (None: profile only)


@dataclass(frozen=True)
class LoadInput:
    """What a section's ``load`` may read beside its own table: the endpoint's data."""

    where: str  # the table's place, for messages: "[[endpoints]] iris/AllTraffic"
    columns: tuple[str, ...]  # the endpoint's input columns (its baseline's, less outputs)
    ground_truth: str  # [ground_truth] destination ('' when not configured)
    store: StoreConnection  # the S3 connection of every prefix


@dataclass(frozen=True)
class Beside:
    """Another variant's window drawn beside this run's features, and the drift between them
    (what a comparison stage, ``analyzer.comparison``, found for this run)."""

    profile: Profile
    evaluation: Evaluation


@dataclass(frozen=True)
class PageContext:
    """What a section's part of report.html may draw beside its own result."""

    summary: Mapping[str, Any]  # run.json
    baseline: Profile  # the target's data baseline
    beside: Mapping[str, Beside] = field(default_factory=dict)  # by variant


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

    name: str  # RunResult.sections key, run.json's violations_by_section key, [endpoints.<name>]
    title: str  # its heading in report.html

    @property
    def config_type(self) -> type[Any] | None:
        """Its [endpoints.<name>] table (a ``modeltap.core.settings`` dataclass), or None."""
        ...

    @property
    def baseline(self) -> BaselineBuilder | None:
        """How ``modeltap baseline`` builds its baseline (``analyzer.baseline_builder``), or None."""
        ...

    async def load(self, config: Any, source: LoadInput) -> object:
        """What its runs read, from its table (its baselines read): Target.sections[name]."""
        ...

    def labels(self, target: Target) -> str:
        """The ground-truth prefix its runs read for the target ('' for none)."""
        ...

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

    def html(self, result: R, page: PageContext) -> Fragment:
        """Its part of report.html (its violations are added from ``violations``)."""
        ...

    def metrics(self, results: Mapping[Ident, R], limits: Limits) -> Iterable[Metric]:
        """Its metric families over the latest result of every target (all families, also
        when empty, so /metrics always lists them)."""
        ...
