"""One monitoring run: a window's capture objects -> a profile against the baseline -> reports.

Each object is parsed and profiled on a worker thread and merged into the window's profile, so
memory stays that of one object plus the (constant-size) profile however long the window is. A
window without data is a run with status ``NoData``, not an error.

Reports go to ``{reports}/{endpoint}/{variant}/{yyyy/mm/dd/hh}/`` of the window's end:
``statistics.json`` (SageMaker's format, the window's profile) and ``constraint_violations.json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from analyzer.attribution_run import AttributionTarget, run_attribution
from analyzer.bias_run import BiasTarget, run_bias
from analyzer.checks import Evaluation, evaluate
from analyzer.engine import Engine
from analyzer.errors import DataError
from analyzer.hooks import Preprocessor
from analyzer.payloads import INPUT, OUTPUT, ParseStats, PayloadParser, concat_tables
from analyzer.profile import Profile
from analyzer.quality_run import QualityTarget, run_quality
from analyzer.readers import Format, ReadOptions, read_chunks
from analyzer.reports import write_reports
from analyzer.scaleout import engine_parts, in_process, object_job
from analyzer.window import ReadStats, Window, list_window, parse_records
from modeltap.core.store_config import StoreConnection
from sidecar.errors import ModeltapError
from sidecar.store.base import ObjectInfo, Store, split_destination

log = logging.getLogger(__name__)

# (baseline, constraints.json, window profile, columns the window showed) -> every check's result
Evaluator = Callable[[Profile, Mapping[str, Any], Profile, Collection[str]], Evaluation]


def evaluate_checks(
    baseline: Profile, constraints: Mapping[str, Any], window: Profile, observed: Collection[str]
) -> Evaluation:
    """The constraints of constraints.json and the statistical drift decision (analyzer.checks)."""
    return evaluate(baseline, constraints, window, observed_columns=observed)


COMPLETED, WITH_VIOLATIONS, NO_DATA, FAILED = (
    "Completed",
    "CompletedWithViolations",
    "NoData",
    "Failed",
)


class RowParser(Protocol):
    def parse(
        self, records: Sequence[dict[str, Any]], stats: ParseStats | None = None
    ) -> pa.Table: ...


@dataclass(frozen=True)
class BatchDataset:
    """Tables a batch job wrote under a prefix (SageMaker's batch transform monitoring).

    Each row holds the job's inputs, and its outputs when the job joined them (columns by name,
    as in the baseline). A run reads the objects of its window: those under the window's
    ``yyyy/mm/dd/hh/`` prefixes when ``partitioned``, else those last modified within it.
    """

    uri: str
    format: Format | None = None  # None: by file name (.csv, .jsonl/.json, .parquet, + .gz)
    header: bool = True  # CSV: the first line holds the column names
    partitioned: bool = False


@dataclass(frozen=True)
class Target:
    """What one run monitors: an endpoint's variant against its own baseline."""

    endpoint: str
    variant: str
    baseline: Profile
    constraints: Mapping[str, Any]
    target_model: str = ""  # one model of a multi-model server ("" = every record)
    output_columns: tuple[str, ...] = ()  # baseline columns read from endpointOutput, in order
    preprocessor: Callable[..., Any] | None = None  # SageMaker's preprocess_handler
    post_analytics: Callable[[dict[str, Any]], Any] | None = None  # postprocess_handler
    batch: BatchDataset | None = None  # read a batch job's dataset instead of captured traffic
    baseline_uri: str = ""  # where the baseline came from (variants sharing one are comparable)
    quality: QualityTarget | None = None  # model quality against ground truth
    bias: BiasTarget | None = None  # bias drift of predictions across a sensitive attribute
    attribution: AttributionTarget | None = None  # feature-attribution drift (Kernel SHAP)


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
    quality: dict[str, Any] | None = None  # model-quality metrics (model_quality.json)
    bias: dict[str, Any] | None = None  # bias report and violations (bias/)
    attribution: dict[str, Any] | None = None  # attributions, NDCG, violations (attribution/)


def _profile_object(
    key: str,
    data: bytes,
    window: Window,
    parser: RowParser,
    baseline: Profile,
    target_model: str = "",
    outputs: PayloadParser | None = None,
) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
    """Parse and profile one capture object (runs on a worker thread)."""
    records, read = parse_records(key, data, window)
    if target_model:  # the sidecar records the target model header under modeltap.targetModel
        records = [
            r for r in records if (r.get("modeltap") or {}).get("targetModel") == target_model
        ]
    stats = ParseStats()
    if not records:
        return None, read, stats, []
    table = parser.parse(records, stats)
    if outputs is not None:
        table = _with_outputs(table, records, parser, outputs, stats)
    if table.num_rows == 0:
        return None, read, stats, []
    prof = Profile.empty(baseline=baseline)
    prof.update(table)
    return prof, read, stats, table.column_names


def _with_outputs(
    inputs: pa.Table,
    records: Sequence[dict[str, Any]],
    parser: RowParser,
    outputs: PayloadParser,
    stats: ParseStats,
) -> pa.Table:
    """Add the endpointOutput columns beside the inputs, row for row.

    The common case parses all outputs at once; when the row counts disagree (a record whose
    output has more or fewer rows than its input), records are matched one by one and a record
    whose sides disagree keeps its inputs with empty outputs (counted as ``output_rows_mismatch``).
    """
    out = outputs.parse(records)
    if out.num_rows != inputs.num_rows:
        ins, outs = [], []
        for rec in records:
            i, o = parser.parse([rec]), outputs.parse([rec])
            if i.num_rows == 0:
                continue
            if o.num_rows != i.num_rows:
                stats.fail("output_rows_mismatch")
                o = pa.table({n: pa.nulls(i.num_rows, pa.string()) for n in outputs.names})
            ins.append(i)
            outs.append(o)
        if not ins:
            return inputs
        inputs = concat_tables(ins)
        out = concat_tables(outs)
    for name in out.column_names:
        if name not in inputs.column_names:
            inputs = inputs.append_column(name, out.column(name))
    return inputs


def _profile_dataset_object(
    key: str, data: bytes, options: ReadOptions, baseline: Profile, names: Sequence[str]
) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
    """Profile one object of a batch job's dataset (runs on a worker thread).

    A file that cannot be read is skipped whole and counted as a bad object, like a damaged
    capture object: one bad file must not hide the rest of the window.
    """
    read, stats = ReadStats(objects=1), ParseStats()
    prof = Profile.empty(baseline=baseline)
    seen: set[str] = set()
    try:
        for chunk in read_chunks(data, key, options, columns=names):
            batch = chunk.batch
            seen.update(chunk.file_columns or batch.schema.names)  # extra columns too
            # Rows without any baseline column still count: as rows where every one is missing.
            table = batch.select([n for n in names if n in batch.schema.names])
            stats.records += table.num_rows
            stats.rows += table.num_rows
            prof.update(table)
    except DataError as exc:
        log.warning("skipping dataset object %s: %s", key, exc)
        read.bad_objects, read.bad_keys = 1, [key]
        return None, read, stats, []
    read.records = stats.rows
    if prof.item_count == 0:
        return None, read, stats, []
    return prof, read, stats, sorted(seen)


def missing_dataset_dir(uri: str) -> str | None:
    """The directory of a ``file://`` dataset when it does not exist (a misconfiguration); None
    for one that exists or an object-store prefix (which may hold no objects yet)."""
    scheme, root, _ = split_destination(uri)
    return root if scheme == "file" and not os.path.isdir(root) else None


async def list_dataset(store: Store, dataset: BatchDataset, window: Window) -> list[ObjectInfo]:
    """The dataset objects of the window: by hour prefix, or by last-modified time.

    A local dataset directory that does not exist is a DataError; a prefix without any object
    at all is logged as a warning (the run is NoData), since a path with a typo looks like that.
    """
    missing = missing_dataset_dir(dataset.uri)
    if missing is not None:
        raise DataError(f"dataset {dataset.uri}: no such directory {missing}")
    found = await _list_dataset(store, dataset, window)
    if not found and not await _holds_objects(store):
        log.warning("dataset %s holds no objects at all: is the path right?", dataset.uri)
    return found


async def _holds_objects(store: Store) -> bool:
    """Whether anything is stored under the store's prefix (one listing page at most)."""
    listing = store.list("")
    try:
        async for _ in listing:
            return True
        return False
    finally:
        aclose = getattr(listing, "aclose", None)
        if aclose is not None:
            await aclose()


async def _list_dataset(store: Store, dataset: BatchDataset, window: Window) -> list[ObjectInfo]:
    if dataset.partitioned:
        found: list[ObjectInfo] = []
        for hour in window.hours():
            found.extend([o async for o in store.list(f"{hour:%Y/%m/%d/%H}/")])
        return found
    start, end = window.start.timestamp(), window.end.timestamp()
    return [o async for o in store.list("") if start <= o.last_modified < end]


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
    store_config: StoreConnection | None = None,
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
            return _profile_dataset_object(key, data, options, target.baseline, names)

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
            return _profile_object(
                key, data, window, parser, target.baseline, target.target_model, outputs
            )

    window_profile: Profile | None = None
    observed: set[str] = set()
    try:
        if target.batch is not None:
            objects = await list_dataset(captures, target.batch, window)
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
            result.statistics = await asyncio.to_thread(window_profile.to_json)
            if evaluate is not None:
                ev = await asyncio.to_thread(
                    evaluate, target.baseline, target.constraints, window_profile, observed
                )
                result.violations = [v.to_dict() for v in ev.violations]
                result.evaluation = ev.to_dict()
            result.status = WITH_VIOLATIONS if result.violations else COMPLETED
        window_has_data = result.status != NO_DATA
        if target.quality is not None and labels is not None and target.batch is None:
            result.quality = await run_quality(
                captures,
                labels,
                target.endpoint,
                target.variant,
                target.target_model,
                target.quality,
                window,
            )
            problem = quality_problem(result.quality)
            if problem:  # bad ground truth, or metrics that could not be computed: said, failed
                log.warning("model quality of %s/%s: %s", target.endpoint, target.variant, problem)
                result.status = FAILED
                result.error = "; ".join(filter(None, [result.error, f"quality: {problem}"]))
            elif result.quality["violations"]:
                result.status = WITH_VIOLATIONS
            elif result.status == NO_DATA and result.quality["statistics"] is not None:
                result.status = COMPLETED  # no new traffic, but labelled older predictions
        if window_has_data and target.batch is None:
            await _run_sections(captures, labels, target, window, result)
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


def quality_problem(doc: Mapping[str, Any]) -> str:
    """What went wrong in a model-quality document ('' when nothing did): ground-truth labels of
    the wrong type (left out of the metrics), or metrics that could not be computed."""
    problems = []
    bad = doc.get("invalid_labels") or {}
    if bad.get("count"):
        shown = ", ".join(repr(e) for e in bad.get("examples", []))
        problems.append(
            f"{bad['count']} of {bad['of']} ground-truth labels are not {bad['expected']} "
            f"(e.g. {shown}); they are left out of the metrics"
        )
    if doc.get("error"):
        problems.append(f"metrics not computed: {doc['error']}")
    return "; ".join(problems)


def _log_failure(exc: Exception, message: str, *args: Any) -> None:
    """One line for a deliberate error (its message names the cause); the traceback of a bug."""
    if isinstance(exc, ModeltapError):
        log.error(f"{message}: %s", *args, exc)
    else:
        log.exception(message, *args)


async def _run_sections(
    captures: Store, labels: Store | None, target: Target, window: Window, result: RunResult
) -> None:
    """Bias and attribution drift; a section that fails fails the run, naming the section."""
    sections: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = []
    who = (target.endpoint, target.variant, target.target_model)
    if target.bias is not None:
        bias = target.bias
        sections.append(("bias", lambda: run_bias(captures, labels, *who, bias, window)))
    if target.attribution is not None:
        attr = target.attribution
        sections.append(("attribution", lambda: run_attribution(captures, *who, attr, window)))
    for name, run in sections:
        try:
            doc = await run()
        except Exception as exc:  # the other sections' results stand
            _log_failure(exc, "%s for %s/%s failed", name, target.endpoint, target.variant)
            doc = {"error": f"{type(exc).__name__}: {exc}", "violations": []}
            result.status = FAILED
            result.error = "; ".join(filter(None, [result.error, f"{name}: {doc['error']}"]))
        setattr(result, name, doc)
        if doc["violations"] and result.status != FAILED:
            result.status = WITH_VIOLATIONS


def run_summary(result: RunResult) -> dict[str, Any]:
    """run.json: what a run found, also the post-analytics hook's argument."""
    by_section = {"data": len(result.violations)}
    for name in ("quality", "bias", "attribution"):
        doc = getattr(result, name)
        if doc is not None:
            by_section[name] = len(doc.get("violations") or [])
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
