"""One monitoring run: read -> profile -> sections -> publish.

The profile stage (:func:`profile_window`) parses and profiles each of the window's objects on a
worker thread (small objects in batches, :mod:`analyzer.object_batches`) and merges it into the
window's profile, so memory stays that of one object plus the (constant-size) profile however long
the window is; with a profile cache (:mod:`analyzer.profile_cache`) only the objects not profiled
before are read. Every registered section configured for the target then runs on it
(:func:`run_sections`; data quality and drift first), and the reports are written
(``analyzer.reports``) under ``{reports}/{endpoint}/{variant}/{yyyy/mm/dd/hh}/{run}/`` of the
window's end. A window without data is a run with status ``NoData``, not an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.capture_payload import INPUT, OUTPUT
from analyzer.checks import Evaluator, evaluate_checks
from analyzer.data_quality.section import DATA
from analyzer.dataset_objects import list_dataset
from analyzer.engine import Engine
from analyzer.hooks import Preprocessor
from analyzer.object_batches import capture_batches
from analyzer.object_profile import RowParser, profile_capture_object, profile_dataset_object
from analyzer.payloads import ParseStats, PayloadParser
from analyzer.profile import Profile
from analyzer.profile_cache import Batch, BatchOf, ProfileCache, cache_context, cache_scope
from analyzer.readers import ReadOptions
from analyzer.registry import SECTIONS
from analyzer.reports import write_reports
from analyzer.results import COMPLETED, FAILED, NO_DATA, WITH_VIOLATIONS, RunResult, run_summary
from analyzer.scaleout import engine_parts, in_process, keyed_engine_parts, object_job
from analyzer.section import SectionInput
from analyzer.targets import Target
from analyzer.window import ReadStats, Window, list_window
from modeltap.core.errors import ModeltapError
from modeltap.core.store import S3Settings
from modeltap.core.store.base import ObjectInfo, Store

log = logging.getLogger(__name__)


ObjectPart = tuple[Profile | None, ReadStats, ParseStats, list[str]]  # one object's profile, counts
ObjectProfiler = Callable[[str, bytes], ObjectPart]


async def _parts_in_process(
    store: Store, objects: Sequence[ObjectInfo], profile_object: ObjectProfiler
) -> AsyncIterator[ObjectPart]:
    """Each object read here and profiled on a worker thread, in key order."""
    for info in objects:
        data = await store.get(info.key)
        yield await asyncio.to_thread(profile_object, info.key, data)


@dataclass
class WindowProfile:
    """What the profile stage read of a window: its profile (None: no rows), the columns its
    records showed, and the read and parse counts."""

    profile: Profile | None = None
    observed: set[str] = field(default_factory=set)
    read: ReadStats = field(default_factory=ReadStats)
    parse: ParseStats = field(default_factory=ParseStats)

    def add(
        self, prof: Profile | None, read: ReadStats, stats: ParseStats, columns: list[str]
    ) -> None:
        """One object's part (its profile is merged by the caller, off the event loop)."""
        self.read.merge(read)
        self.observed.update(columns)
        self.parse.records += stats.records
        self.parse.rows += stats.rows
        self.parse.failed += stats.failed
        for reason, n in stats.reasons.items():
            self.parse.reasons[reason] = self.parse.reasons.get(reason, 0) + n


def object_profiler(target: Target, window: Window) -> ObjectProfiler:
    """How one object of the target's window is parsed and profiled against its baseline."""
    if target.batch is not None:
        options = ReadOptions(format=target.batch.format, header=target.batch.header)
        names = list(target.baseline.columns)

        def profile_dataset(key: str, data: bytes) -> ObjectPart:
            return profile_dataset_object(key, data, options, target.baseline, names)

        return profile_dataset
    parser, outputs = _capture_parsers(target)

    def profile_capture(key: str, data: bytes) -> ObjectPart:
        return profile_capture_object(
            key, data, window, parser, target.baseline, target.target_model, outputs
        )

    return profile_capture


def _capture_parsers(target: Target) -> tuple[RowParser, PayloadParser | None]:
    """The parser of a capture target's input payloads (its preprocessor, if it has one) and of
    its output payloads (None: the baseline has no output columns)."""
    names = [c for c in target.baseline.columns if c not in target.output_columns]
    outputs = (
        PayloadParser(list(target.output_columns), side=OUTPUT) if target.output_columns else None
    )
    parser: RowParser = (
        Preprocessor(target.preprocessor, names)
        if target.preprocessor is not None
        else PayloadParser(names, side=INPUT)
    )
    return parser, outputs


BatchProfiler = Callable[[Sequence[ObjectInfo], BatchOf | None], AsyncIterator[Batch]]


def batch_profiler(captures: Store, target: Target, window: Window) -> BatchProfiler | None:
    """How a capture target's small objects are profiled together (``analyzer.object_batches``);
    None for a batch dataset or a preprocessor (which parses record by record)."""
    if target.batch is not None:
        return None
    parser, outputs = _capture_parsers(target)
    if not isinstance(parser, PayloadParser):
        return None
    payloads = parser

    def batches(todo: Sequence[ObjectInfo], batch_of: BatchOf | None) -> AsyncIterator[Batch]:
        return capture_batches(captures, todo, window, payloads, target.baseline,
                               target.target_model, outputs, batch_of=batch_of)  # fmt: skip

    return batches


async def profile_window(
    captures: Store,
    target: Target,
    window: Window,
    *,
    engine: Engine | None = None,
    store_config: S3Settings | None = None,
    cache: ProfileCache | None = None,
) -> WindowProfile:
    """The profile stage: the window's objects listed, read, parsed and profiled (here, on a
    worker thread each or in batches of small objects, or on the engine's workers for a large
    window) and merged into one profile, so memory stays that of one object plus the
    (constant-size) profile. With a ``cache`` (capture targets) each object is profiled once:
    the partial profiles of objects seen by earlier windows are merged instead."""
    if target.batch is not None:
        objects = await list_dataset(captures, target.batch, window)
    elif not DATA.configured(target):  # no data baseline: its sections read the window
        objects = []
    else:
        objects = await list_window(captures, target.endpoint, target.variant, window)
    profile_object = object_profiler(target, window)
    batches = batch_profiler(captures, target, window)
    job = object_job(target, window, captures.uri, store_config) if engine is not None else None
    parts: AsyncIterator[ObjectPart]
    if (
        job is not None
        and engine is not None
        and not in_process(engine, len(objects), _size(objects))
    ):
        parts = engine_parts(engine, job, [o.key for o in objects])
    elif batches is not None:
        parts = (part async for _, part in batches(objects, None))
    else:
        parts = _parts_in_process(captures, objects, profile_object)
    if cache is not None and target.batch is None and DATA.configured(target):  # once each

        async def fresh(todo: Sequence[ObjectInfo], batch_of: BatchOf) -> AsyncIterator[Batch]:
            if (
                job is not None
                and engine is not None
                and not in_process(engine, len(todo), _size(todo))
            ):
                async for info, part in keyed_engine_parts(engine, job, todo):
                    yield [(info, part[1])], part
            elif batches is not None:
                async for batch in batches(todo, batch_of):
                    yield batch
            else:
                for info in todo:
                    data = await captures.get(info.key)
                    part = await asyncio.to_thread(profile_object, info.key, data)
                    yield [(info, part[1])], part

        parts = cache.parts(cache_scope(target), cache_context(target), window, objects, fresh)
    found = WindowProfile()
    async for prof, read, stats, columns in parts:
        found.add(prof, read, stats, columns)
        if prof is not None:
            found.profile = (
                prof
                if found.profile is None
                else await asyncio.to_thread(found.profile.merge, prof)
            )
    return found


async def run_window(
    captures: Store,
    reports: Store | None,
    target: Target,
    window: Window,
    evaluate: Evaluator | None = evaluate_checks,
    *,
    labels: Store | None = None,
    engine: Engine | None = None,
    store_config: S3Settings | None = None,
    cache: ProfileCache | None = None,
) -> RunResult:
    """Analyse one window of one target and write its reports (when ``reports`` is given):
    read -> profile (:func:`profile_window`) -> sections (data quality first) -> publish.

    ``captures`` is the capture store, or for a batch target the store of its dataset;
    ``labels`` the ground-truth store of a target with model quality; ``evaluate`` the data
    checks (None: statistics only). With an ``engine`` (``analyzer.engine``) the objects are
    profiled on its workers, which read them from ``captures.uri`` with ``store_config``
    (``analyzer.scaleout``), unless the window is small. With a ``cache``
    (``analyzer.profile_cache``) only objects not profiled before are read.
    """
    started = time.monotonic()
    result = RunResult(target.endpoint, target.variant, window, model=target.target_model)
    try:
        found = await profile_window(
            captures, target, window, engine=engine, store_config=store_config, cache=cache
        )
        result.read, result.parse = found.read, found.parse
        has_data = found.profile is not None and found.profile.item_count > 0
        result.rows = found.profile.item_count if found.profile is not None else 0
        result.status = COMPLETED if has_data else NO_DATA
        source = SectionInput(
            captures, labels, target, window, has_data,
            profile=found.profile if has_data else None,
            observed=frozenset(found.observed),
            checks=evaluate,
        )  # fmt: skip
        await run_sections(source, result)
        if target.post_analytics is not None:
            custom = await asyncio.to_thread(target.post_analytics, run_summary(result))
            if isinstance(custom, dict):
                result.custom = custom
        if reports is not None:
            await write_reports(reports, result, target.baseline)
    except Exception as exc:  # a run fails alone; the schedule and the other targets go on
        _log_failure(exc, "monitoring run for %s/%s failed", target.endpoint, target.variant)
        result.status = FAILED
        result.error = f"{type(exc).__name__}: {exc}"
        # the window could not be read: data quality still reports (no statistics, no violations)
        if DATA.name not in result.sections and DATA.configured(target):
            result.sections[DATA.name] = DATA.failed("")
            result.violations_by_section = {DATA.name: 0, **result.violations_by_section}
    result.duration_seconds = time.monotonic() - started
    result.finished_at = time.time()
    return result


def _size(objects: Sequence[ObjectInfo]) -> int:
    return sum(o.size for o in objects)


def _log_failure(exc: Exception, message: str, *args: Any) -> None:
    """One line for a deliberate error (its message names the cause); the traceback of a bug."""
    if isinstance(exc, ModeltapError):
        log.error(f"{message}: %s", *args, exc)
    else:
        log.exception(message, *args)


async def run_sections(source: SectionInput, result: RunResult) -> None:
    """Every registered section configured for the target, in order; one that raises or reports
    a problem fails the run, naming the section, and the other sections' results stand."""
    target = source.target
    for section in SECTIONS:
        if not section.configured(target):
            continue
        problem = ""
        try:
            found = await section.run(source)
        except Exception as exc:
            _log_failure(exc, "%s for %s/%s failed", section.name, target.endpoint, target.variant)
            problem = f"{type(exc).__name__}: {exc}"
            found = section.failed(problem)
        if found is None:
            continue
        result.sections[section.name] = found
        outcome = section.outcome(found)
        result.violations_by_section[section.name] = outcome.violations
        if outcome.problem and not problem:
            problem = outcome.problem
            log.warning("%s of %s/%s: %s", section.name, target.endpoint, target.variant, problem)
        if problem:
            result.status = FAILED
            result.error = "; ".join(filter(None, [result.error, f"{section.name}: {problem}"]))
        elif outcome.violations and result.status != FAILED:
            result.status = WITH_VIOLATIONS
        elif result.status == NO_DATA and outcome.has_data:
            result.status = COMPLETED  # no new traffic, but (e.g.) labelled older predictions
