"""What ``modeltap monitor`` does: analyse rolling windows of captured traffic, continuously or once.

Configuration is a TOML file::

    [monitor]
    captures = "s3://bucket/captures"   # where the sidecars store capture records
    reports = "s3://bucket/reports"     # where statistics.json / constraint_violations.json go
    window_minutes = 60                 # each run analyses the last hour ...
    end_offset_minutes = 5              # ... ending 5 minutes ago, so late files are in
    interval_seconds = 300              # continuous mode: one run every 5 minutes ...
    # schedule = "0 * * * *"            # ... or on a cron expression (UTC), like SageMaker's
    # strict_constraints = true         # refuse constraints.json keys the checks do not read
    host = "0.0.0.0"                    # /metrics and /healthz (continuous mode)
    port = 9091
    engine = "local"                    # profile objects on local processes, or "dask"
    # scheduler = "tcp://dask-scheduler:8786"   # dask: a running cluster (default: a LocalCluster)
    # workers = 4                       # local processes / LocalCluster workers (default: cores, capped by the memory limit)

    [store]                             # S3 connection of captures and reports (optional)
    endpoint_url = "http://seaweedfs:8333"
    path_style = true

    [[endpoints]]                       # one table per endpoint/variant, each with its baseline
    name = "iris"
    variant = "AllTraffic"
    baseline = "s3://bucket/baselines/iris"   # holds statistics.json and constraints.json
    output_columns = ["label", "probability"]  # optional: baseline columns from endpointOutput
    preprocessor = "/etc/modeltap/pre.py:preprocess_handler"   # optional, as SageMaker's
    post_analytics = "mypkg.hooks:postprocess_handler"         # optional

    [[endpoints]]                       # another variant of the same endpoint: A/B
    name = "iris"                       # variants after the first are also compared with the
    variant = "Challenger"              # first one's window (variants.json, variant_drift metrics)
    baseline = "s3://bucket/baselines/iris"

    [[endpoints]]                       # a batch job's output instead of captured traffic
    name = "nightly-scoring"
    baseline = "s3://bucket/baselines/scoring"
    dataset = "s3://bucket/batch/scoring/"   # CSV, JSON Lines or Parquet tables (inputs+outputs)
    dataset_format = "csv"              # optional: by file name when omitted
    partitioned = true                  # objects under yyyy/mm/dd/hh/; else by last-modified time

Every key is declared in ``analyzer.config`` (``--help-config`` prints them); ``[monitor]``,
``[store]`` and ``[ground_truth]`` keys can also come from ``MODELTAP_MONITOR_<TABLE>_<KEY>``.

:func:`run_once` runs one window per endpoint (``--once``, for a Kubernetes CronJob);
:func:`run_forever` serves and runs on the schedule. ``analyzer.cli.monitor`` parses the options.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal

from aiohttp import web
from croniter import croniter
from prometheus_client import CollectorRegistry

from analyzer import heap
from analyzer.checks import Evaluator, evaluate_checks
from analyzer.config import MonitorConfig
from analyzer.engine import Engine
from analyzer.exporter import AnalyzerCollector
from analyzer.groundtruth import IngestConfig, Ingestor, add_ground_truth_route
from analyzer.job import run_window
from analyzer.profile_cache import ProfileCache
from analyzer.registry import COMPARISONS, SECTIONS
from analyzer.reports import write_reports, write_root_index
from analyzer.results import FAILED, RunResult
from analyzer.server import build_app
from analyzer.target_loading import load_target
from analyzer.targets import Target
from analyzer.window import Window
from modeltap.build import register_process_metrics
from modeltap.core.errors import ConfigError
from modeltap.core.store import open_store

log = logging.getLogger("analyzer.monitor")


def next_run(now: dt.datetime, cfg: MonitorConfig) -> dt.datetime:
    """When the next run starts: the next cron tick, or ``interval_seconds`` from now."""
    if cfg.monitor.schedule:
        tick: dt.datetime = croniter(cfg.monitor.schedule, now).get_next(dt.datetime)
        return tick
    return now + dt.timedelta(seconds=cfg.monitor.interval_seconds)


def window_ending(now: dt.datetime, cfg: MonitorConfig) -> Window:
    end = now - dt.timedelta(minutes=cfg.monitor.end_offset_minutes)
    return Window(end - dt.timedelta(minutes=cfg.monitor.window_minutes), end)


async def run_all(
    cfg: MonitorConfig,
    targets: list[Target],
    window: Window,
    collector: AnalyzerCollector | None = None,
    evaluate: Evaluator | None = None,
    engine: Engine | None = None,
) -> list[RunResult]:
    """Run every target on one window, compare variants, then write every report; ``engine``
    profiles the objects of large windows (``analyzer.engine``)."""
    captures = open_store(cfg.monitor.captures, cfg.store)
    reports = open_store(cfg.monitor.reports, cfg.store)
    cache = open_cache(cfg)
    runs: list[tuple[Target, RunResult]] = []
    try:
        for target in targets:
            labels_uri = next(
                (uri for s in SECTIONS if s.configured(target) and (uri := s.labels(target))), ""
            )
            labels = open_store(labels_uri, cfg.store) if labels_uri else None
            if target.batch is None:
                try:
                    result = await run_window(
                        captures,
                        None,
                        target,
                        window,
                        evaluate,
                        labels=labels,
                        engine=engine,
                        store_config=cfg.store,
                        cache=cache,
                    )
                finally:
                    if labels is not None:
                        await labels.close()
            else:
                dataset = open_store(target.batch.uri, cfg.store)
                try:
                    result = await run_window(
                        dataset,
                        None,
                        target,
                        window,
                        evaluate,
                        labels=labels,
                        engine=engine,
                        store_config=cfg.store,
                    )
                finally:
                    await dataset.close()
                    if labels is not None:
                        await labels.close()
            runs.append((target, result))
        for stage in COMPARISONS:
            for (_, result), found in zip(runs, await stage.compare(runs), strict=True):
                if found is not None:
                    result.comparisons[stage.name] = found
        await write_root_index(reports, [t.endpoint for t in targets])
        for target, result in runs:
            try:
                await write_reports(reports, result, target.baseline, keep=cfg.monitor.keep_reports)
            except Exception as exc:  # the run's numbers stand; its status says the write failed
                log.exception("writing reports of %s/%s failed", result.endpoint, result.variant)
                result.status, result.error = FAILED, f"reports: {type(exc).__name__}: {exc}"
            log.info(
                "%s/%s %s..%s: %s, %d rows, %d violation(s)%s",
                target.endpoint, target.variant, window.start.isoformat(), window.end.isoformat(),
                result.status, result.rows, sum(result.violations_by_section.values()),
                f" ({result.error})" if result.error else "",
            )  # fmt: skip
            if collector is not None:
                collector.record(result)
    finally:
        await captures.close()
        await reports.close()
        if cache is not None:
            await cache.store.close()
    return [result for _, result in runs]


def open_cache(cfg: MonitorConfig) -> ProfileCache | None:
    """The profile cache of ``monitor.cache`` (default: ``{reports}/_cache``), unless it is off."""
    if not cfg.monitor.profile_cache:
        return None
    uri = cfg.monitor.cache or cfg.monitor.reports.rstrip("/") + "/_cache"
    return ProfileCache(open_store(uri, cfg.store), cfg.monitor.cache_max_entries)


async def serve(
    cfg: MonitorConfig,
    targets: list[Target],
    evaluate: Evaluator | None,
    engine: Engine | None = None,
) -> None:
    registry = CollectorRegistry()
    collector = AnalyzerCollector(registry)
    register_process_metrics(registry, "analyzer")  # process_*, modeltap_analyzer_build_info
    reports = open_store(cfg.monitor.reports, cfg.store)
    ingestor: Ingestor | None = None
    token = cfg.ground_truth.token()
    if token:
        if not cfg.ground_truth.destination:
            raise ConfigError("a ground-truth token is set but [ground_truth] destination is not")
        ingestor = Ingestor(
            open_store(cfg.ground_truth.destination, cfg.store),
            IngestConfig(
                token=token,
                max_body_bytes=cfg.ground_truth.max_body_mib << 20,
                targets=frozenset((t.endpoint, t.variant) for t in targets),
            ),
        )
        collector.ingest = ingestor.counters
    gt = ingestor

    def routes(app: web.Application) -> None:
        if gt is not None:
            add_ground_truth_route(app, gt)

    runner = web.AppRunner(build_app(registry, reports, routes), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, cfg.monitor.host, cfg.monitor.port).start()
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        await runner.cleanup()
        await reports.close()
        if ingestor is not None:
            await ingestor.store.close()
        raise ConfigError(
            f"[monitor] cannot listen on {cfg.monitor.host}:{cfg.monitor.port}: {exc.strerror or exc}"
        ) from None
    log.info("modeltap monitor: metrics on http://%s:%d/metrics, reports on /reports/, "
             "ground truth %s, runs %s", cfg.monitor.host, cfg.monitor.port,
             "on POST /ground-truth" if ingestor else "from files only (no token)",
             f"on cron {cfg.monitor.schedule!r}" if cfg.monitor.schedule else f"every {cfg.monitor.interval_seconds:g}s")  # fmt: skip
    try:
        now = dt.datetime.now(dt.UTC)
        due = next_run(now, cfg) if cfg.monitor.schedule else now
        while True:
            await asyncio.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()))
            await run_all(cfg, targets, window_ending(due, cfg), collector, evaluate, engine)
            await asyncio.to_thread(heap.release)  # the run's freed memory, not kept till the next
            due = next_run(max(due, dt.datetime.now(dt.UTC)), cfg)
    finally:
        await runner.cleanup()  # flushes and closes the ingestor (on_cleanup)
        await reports.close()
        if ingestor is not None:
            await ingestor.store.close()


async def load_targets(cfg: MonitorConfig) -> list[Target]:
    """The target of every [[endpoints]] table, its baselines read and checked."""
    return [
        await load_target(
            e, cfg.store, cfg.ground_truth, strict_constraints=cfg.monitor.strict_constraints
        )
        for e in cfg.endpoints
    ]


async def run_once(
    cfg: MonitorConfig, window: Window, engine: Engine, evaluate: Evaluator = evaluate_checks
) -> int:
    """One window per endpoint (``--once``): 1 when a run failed, else 0."""
    results = await run_all(cfg, await load_targets(cfg), window, evaluate=evaluate, engine=engine)
    return 1 if any(r.status == FAILED for r in results) else 0


async def run_forever(
    cfg: MonitorConfig, engine: Engine, evaluate: Evaluator = evaluate_checks
) -> None:
    """Serve /metrics, /reports/ and POST /ground-truth, and run on the schedule, until SIGTERM.

    Kubernetes stops a pod with SIGTERM, and a container's pid 1 ignores a signal it has no
    handler for: without one the analyzer sat out the whole grace period and was SIGKILLed on
    every rollout. SIGTERM stops serving (a run in progress is abandoned, as on any restart).
    """
    made = heap.settle()  # before the runs' threads make their arenas (analyzer.heap)
    if made:
        log.info("modeltap monitor: glibc heap set to %s", ", ".join(made))
    task = asyncio.ensure_future(serve(cfg, await load_targets(cfg), evaluate, engine))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("modeltap monitor: stopped on SIGTERM")
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
