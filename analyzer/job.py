"""One monitoring run: a window's capture objects -> a profile against the baseline -> reports.

Each object is parsed and profiled on a worker thread and merged into the window's profile, so
memory stays that of one object plus the (constant-size) profile however long the window is. A
window without data is a run with status ``NoData``, not an error.

Reports go to ``{reports}/{endpoint}/{variant}/{yyyy/mm/dd/hh}/`` of the window's end:
``statistics.json`` (SageMaker's format, the window's profile) and ``constraint_violations.json``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import Any

from analyzer.capture_payload import INPUT, OUTPUT
from analyzer.checks import Evaluation, evaluate
from analyzer.dataset_objects import list_dataset
from analyzer.engine import Engine
from analyzer.hooks import Preprocessor
from analyzer.object_profile import RowParser, profile_capture_object, profile_dataset_object
from analyzer.payloads import ParseStats, PayloadParser
from analyzer.profile import Profile
from analyzer.readers import ReadOptions
from analyzer.registry import SECTIONS
from analyzer.reports import write_reports
from analyzer.results import COMPLETED, FAILED, NO_DATA, WITH_VIOLATIONS, RunResult, run_summary
from analyzer.scaleout import engine_parts, in_process, object_job
from analyzer.section import SectionInput
from analyzer.statistics import profile_to_statistics
from analyzer.targets import Target
from analyzer.window import ReadStats, Window, list_window
from modeltap.core.errors import ModeltapError
from modeltap.core.store import S3Settings
from modeltap.core.store.base import ObjectInfo, Store

log = logging.getLogger(__name__)

# (baseline, constraints.json, window profile, columns the window showed) -> every check's result
Evaluator = Callable[[Profile, Mapping[str, Any], Profile, Collection[str]], Evaluation]


def evaluate_checks(
    baseline: Profile, constraints: Mapping[str, Any], window: Profile, observed: Collection[str]
) -> Evaluation:
    """The constraints of constraints.json and the statistical drift decision (analyzer.checks)."""
    return evaluate(baseline, constraints, window, observed_columns=observed)


async def _parts_in_process(
    store: Store,
    objects: Sequence[ObjectInfo],
    profile_object: Callable[[str, bytes], tuple[Profile | None, ReadStats, ParseStats, list[str]]],
) -> AsyncIterator[tuple[Profile | None, ReadStats, ParseStats, list[str]]]:
    """Each object read here and profiled on a worker thread, in key order."""
    for info in objects:
        data = await store.get(info.key)
        yield await asyncio.to_thread(profile_object, info.key, data)


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
) -> RunResult:
    """Analyse one window of one target and write its reports (when ``reports`` is given).

    ``captures`` is the capture store, or for a batch target the store of its dataset;
    ``labels`` the ground-truth store of a target with model quality. With an ``engine``
    (``analyzer.engine``) the objects are profiled on its workers, which read them from
    ``captures.uri`` with ``store_config`` (``analyzer.scaleout``), unless the window is small.
    """
    started = time.monotonic()
    result = RunResult(target.endpoint, target.variant, window, model=target.target_model)
    profile_object: Callable[[str, bytes], tuple[Profile | None, ReadStats, ParseStats, list[str]]]
    if target.batch is not None:
        options = ReadOptions(format=target.batch.format, header=target.batch.header)
        names = list(target.baseline.columns)

        def profile_object(
            key: str, data: bytes
        ) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
            return profile_dataset_object(key, data, options, target.baseline, names)

    else:
        names = [c for c in target.baseline.columns if c not in target.output_columns]
        outputs = (
            PayloadParser(list(target.output_columns), side=OUTPUT)
            if target.output_columns
            else None
        )
        parser: RowParser = (
            Preprocessor(target.preprocessor, names)
            if target.preprocessor is not None
            else PayloadParser(names, side=INPUT)
        )

        def profile_object(
            key: str, data: bytes
        ) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
            return profile_capture_object(
                key, data, window, parser, target.baseline, target.target_model, outputs
            )

    window_profile: Profile | None = None
    observed: set[str] = set()
    try:
        if target.batch is not None:
            objects = await list_dataset(captures, target.batch, window)
        elif not target.baseline.columns:  # no tabular baseline: its sections read the window
            objects = []
        else:
            objects = await list_window(captures, target.endpoint, target.variant, window)
        parts = (
            engine_parts(
                engine,
                object_job(target, window, captures.uri, store_config),
                [o.key for o in objects],
            )
            if engine is not None
            and not in_process(engine, len(objects), sum(o.size for o in objects))
            else _parts_in_process(captures, objects, profile_object)
        )
        async for prof, read, stats, columns in parts:
            result.read.merge(read)
            observed.update(columns)
            result.parse.records += stats.records
            result.parse.rows += stats.rows
            result.parse.failed += stats.failed
            for reason, n in stats.reasons.items():
                result.parse.reasons[reason] = result.parse.reasons.get(reason, 0) + n
            if prof is not None:
                window_profile = (
                    prof
                    if window_profile is None
                    else await asyncio.to_thread(window_profile.merge, prof)
                )
        if window_profile is None or window_profile.item_count == 0:
            result.status = NO_DATA
        else:
            result.profile = window_profile
            result.rows = window_profile.item_count
            result.statistics = await asyncio.to_thread(profile_to_statistics, window_profile)
            if evaluate is not None:
                ev = await asyncio.to_thread(
                    evaluate, target.baseline, target.constraints, window_profile, observed
                )
                result.violations = [v.to_dict() for v in ev.violations]
                result.evaluation = ev.to_dict()
            result.status = WITH_VIOLATIONS if result.violations else COMPLETED
        source = SectionInput(captures, labels, target, window, result.status != NO_DATA)
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
    result.duration_seconds = time.monotonic() - started
    result.finished_at = time.time()
    return result


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
