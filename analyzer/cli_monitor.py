"""``modeltap monitor``: analyse rolling windows of captured traffic, continuously or once.

Configuration is a TOML file::

    [monitor]
    captures = "s3://bucket/captures"   # where the sidecars store capture records
    reports = "s3://bucket/reports"     # where statistics.json / constraint_violations.json go
    window_minutes = 60                 # each run analyses the last hour ...
    end_offset_minutes = 5              # ... ending 5 minutes ago, so late files are in
    interval_seconds = 300              # continuous mode: one run every 5 minutes ...
    # schedule = "0 * * * *"            # ... or on a cron expression (UTC), like SageMaker's
    host = "0.0.0.0"                    # /metrics and /healthz (continuous mode)
    port = 9091
    engine = "local"                    # profile objects on local processes, or "dask"
    # scheduler = "tcp://dask-scheduler:8786"   # dask: a running cluster (default: a LocalCluster)
    # workers = 4                       # local processes / LocalCluster workers (default: cores, capped by the memory limit)

    [store]                             # S3 settings shared by captures and reports (optional)
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

``--once`` runs one window per endpoint and exits (for a Kubernetes CronJob): status 0 when every
run completed (with or without violations, or without data), 1 when one failed, 2 on bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import logging
import os
import signal
import sys
import tomllib
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from croniter import croniter
from prometheus_client import CollectorRegistry

from analyzer.attribution.client import ModelClientConfig
from analyzer.attribution.kernel_shap import Background
from analyzer.attribution_run import AttributionTarget
from analyzer.bias import Facet
from analyzer.bias_run import BiasTarget
from analyzer.config_types import check_table
from analyzer.engine import ENGINES, Engine, open_engine
from analyzer.errors import AnalyzerError
from analyzer.exporter import AnalyzerCollector
from analyzer.groundtruth import IngestConfig, Ingestor, PredictionSpec, add_ground_truth_route
from analyzer.hooks import load_hook
from analyzer.job import (
    FAILED,
    BatchDataset,
    Evaluator,
    RunResult,
    Target,
    evaluate_checks,
    run_window,
)
from analyzer.profile import Profile
from analyzer.quality import Calibration, ProblemType, QualityError
from analyzer.quality_run import QualityTarget
from analyzer.readers import Format
from analyzer.reports import write_reports, write_root_index
from analyzer.server import build_app
from analyzer.variants import compare_variants
from analyzer.window import Window
from modeltap.build import register_process_metrics
from sidecar.config import StoreConfig
from sidecar.errors import ConfigError, ModeltapError
from sidecar.store.base import open_store, split_destination

log = logging.getLogger("analyzer.monitor")


@dataclass(frozen=True)
class QualityConfig:
    """``[endpoints.quality]``: model-quality monitoring of one endpoint/variant."""

    problem_type: str
    baseline: str  # `modeltap baseline --problem-type` output: statistics.json + constraints.json
    ground_truth: str = ""  # the labels' prefix; default: [ground_truth] destination
    inference_index: int | None = None  # CSV output: the label's column
    probability_index: int | None = None  # CSV output: the probability's column
    inference_attribute: str | None = None  # JSON output: path of the label, e.g. predictions[*]
    probability_attribute: str | None = None  # JSON output: path of the probability
    probability_threshold: float = 0.5
    positive_label: str | None = None
    label_delay_hours: float = 0.0  # realised metrics cover the window shifted back this much


@dataclass(frozen=True)
class BiasConfig:
    """``[endpoints.bias]``: bias drift across a sensitive attribute (an input column)."""

    baseline: str  # `modeltap baseline --bias-facet ...`: analysis.json + constraints.json
    facet: str  # the input column of the sensitive attribute
    facet_threshold: float | None = None  # the disadvantaged group: values above it ...
    facet_values: tuple[str, ...] = ()  # ... or these categories (neither: each value in turn)
    group: str = ""  # an input column for CDDPL (conditional demographic disparity)
    positive_label: str = "1"
    inference_index: int | None = None  # how to read the prediction: as [endpoints.quality]
    probability_index: int | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold: float = 0.5
    bootstrap: int = 200  # resamples for the window's confidence interval

    def spec(self) -> PredictionSpec:
        return PredictionSpec(
            inference_index=self.inference_index,
            probability_index=self.probability_index,
            inference_attribute=self.inference_attribute,
            probability_attribute=self.probability_attribute,
            probability_threshold=self.probability_threshold,
        )

    def facet_spec(self) -> Facet:
        values = tuple(self.facet_values) or None
        return Facet(self.facet, values=values, threshold=self.facet_threshold)


@dataclass(frozen=True)
class AttributionConfig:
    """``[endpoints.attribution]``: feature-attribution drift by Kernel SHAP against the model."""

    baseline: str  # `modeltap baseline --attribution ...`: analysis.json + background.json
    model_url: str  # where to score synthetic rows: a shadow model, never the live sidecar
    content_type: str = "text/csv"  # or application/json ({"instances": [...]})
    score_index: int | None = 0  # CSV responses: the score's column
    score_path: str | None = None  # JSON responses: the path of each row's score
    rows: int = 50  # window rows explained per run
    nsamples: int | None = None  # coalitions per row (default: the baseline's)
    threshold: float = 0.9  # NDCG below this is a violation
    rows_per_request: int = 500
    max_concurrency: int = 2
    requests_per_second: float = 10.0

    def client(self) -> ModelClientConfig:
        return ModelClientConfig(
            self.model_url,
            content_type=typing.cast(typing.Any, self.content_type),
            score_index=None if self.score_path else self.score_index,
            score_path=self.score_path,
            rows_per_request=self.rows_per_request,
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
        )


@dataclass(frozen=True)
class GroundTruthConfig:
    """``[ground_truth]``: where labels live and the analyzer's ``POST /ground-truth``."""

    destination: str = (
        ""  # s3:// or file:// prefix; labels under {endpoint}/{variant}/yyyy/mm/dd/hh/
    )
    token_env: str = "MODELTAP_GROUND_TRUTH_TOKEN"  # bearer token (env var name); unset: no POST
    token_file: str = ""  # ... or a file holding it (a mounted Secret); wins over token_env
    max_body_mib: int = 16

    def token(self) -> str:
        """The bearer token ('' when none is configured: the endpoint answers 404)."""
        if self.token_file:
            try:
                return Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"[ground_truth] token_file {self.token_file}: {exc.strerror}"
                ) from exc
        return os.environ.get(self.token_env, "").strip()


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    baseline: str
    variant: str = "AllTraffic"
    target_model: str = ""  # monitor one model of a multi-model server (its X-Target-Model value)
    output_columns: tuple[str, ...] = ()  # baseline columns that come from endpointOutput, in order
    preprocessor: str = ""  # 'module:function' or '/path/script.py:function' (preprocess_handler)
    post_analytics: str = ""  # 'module:function' (postprocess_handler), may add custom numbers
    dataset: str = ""  # a batch job's tables (s3:// or file:// prefix) instead of captures
    dataset_format: str = ""  # csv | jsonl | parquet ("" = by file name)
    dataset_header: bool = True  # CSV files start with a header line
    partitioned: bool = False  # dataset objects under yyyy/mm/dd/hh/ (else by last-modified)
    quality: QualityConfig | None = None  # [endpoints.quality]: model quality with ground truth
    bias: BiasConfig | None = None  # [endpoints.bias]: bias drift
    attribution: AttributionConfig | None = None  # [endpoints.attribution]: attribution drift


@dataclass(frozen=True)
class MonitorConfig:
    captures: str
    reports: str
    endpoints: tuple[EndpointConfig, ...]
    window_minutes: float = 60.0
    end_offset_minutes: float = 0.0
    interval_seconds: float = 300.0
    schedule: str = ""  # a cron expression (UTC); overrides interval_seconds when set
    host: str = "0.0.0.0"
    port: int = 9091
    store: StoreConfig = StoreConfig()
    ground_truth: GroundTruthConfig = GroundTruthConfig()
    engine: str = "local"  # where objects are profiled: local processes or dask (analyzer.engine)
    scheduler: str = ""  # dask: the scheduler's address ("" = start a LocalCluster)
    workers: int = 0  # local processes or LocalCluster workers (0 = the usable cores, capped by the memory limit)


def _fields(cls: type[Any], table: dict[str, Any], where: str) -> dict[str, Any]:
    return check_table(cls, table, where)  # a table, known keys, values of the fields' types


def _section(cls: Any, table: Any, where: str) -> Any:
    """A sub-table as its config dataclass, validated by building what it configures."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _fields(cls, table, where)
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    missing = [k for k in required if k not in table]
    if missing:
        raise ConfigError(f"{where}: needs {', '.join(missing)}")
    if "facet_values" in table:
        table = {**table, "facet_values": tuple(str(v) for v in table["facet_values"])}
    try:
        cfg = cls(**table)
        if isinstance(cfg, BiasConfig):
            cfg.spec()
            cfg.facet_spec()
        if isinstance(cfg, AttributionConfig):
            cfg.client()
            if cfg.rows < 1 or not 0 < cfg.threshold <= 1:
                raise ValueError("rows must be >= 1 and threshold within (0, 1]")
    except (AnalyzerError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    split_destination(cfg.baseline)
    return cfg


def _quality(table: Any, ground_truth: GroundTruthConfig, where: str) -> QualityConfig:
    where = f"{where} [endpoints.quality]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _fields(QualityConfig, table, where)
    for key in ("problem_type", "baseline"):
        if key not in table:
            raise ConfigError(f"{where}: needs {key}")
    try:
        ProblemType.parse(table["problem_type"])
        cfg = QualityConfig(**table)
        PredictionSpec(
            inference_index=cfg.inference_index,
            probability_index=cfg.probability_index,
            inference_attribute=cfg.inference_attribute,
            probability_attribute=cfg.probability_attribute,
            probability_threshold=cfg.probability_threshold,
        )
    except (QualityError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if cfg.label_delay_hours < 0:
        raise ConfigError(f"{where}: label_delay_hours must be >= 0")
    split_destination(cfg.baseline)
    if not (cfg.ground_truth or ground_truth.destination):
        raise ConfigError(f"{where}: needs ground_truth, or [ground_truth] destination")
    if cfg.ground_truth:
        split_destination(cfg.ground_truth)
    return cfg


def load_config(path: Path) -> MonitorConfig:
    """Read and validate the monitor's TOML file; errors name the file and the key."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML (UTF-8): {exc}") from exc
    extra = sorted(set(doc) - {"monitor", "store", "endpoints", "ground_truth"})
    if extra:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(extra)}")
    monitor = dict(_fields(MonitorConfig, doc.get("monitor", {}), f"{path} [monitor]"))
    nested = sorted({"store", "ground_truth", "endpoints"} & set(monitor))
    if nested:
        raise ConfigError(f"{path}: [monitor] {', '.join(nested)} must be tables of their own")
    if not isinstance(doc.get("endpoints", []), list):
        raise ConfigError(f"{path}: endpoints must be [[endpoints]] tables")
    for key in ("captures", "reports"):
        if key not in monitor:
            raise ConfigError(f"{path}: [monitor] needs {key} (a file:/// or s3:// URI)")
        split_destination(monitor[key])
    store = StoreConfig(**_fields(StoreConfig, dict(doc.get("store", {})), f"{path} [store]"))
    gt_table = dict(doc.get("ground_truth", {}))
    ground_truth = GroundTruthConfig(
        **_fields(GroundTruthConfig, gt_table, f"{path} [ground_truth]")
    )
    if ground_truth.destination:
        split_destination(ground_truth.destination)
    endpoints = []
    for i, table in enumerate(doc.get("endpoints", [])):
        where = f"{path} [[endpoints]] #{i + 1}"
        _fields(EndpointConfig, table, where)
        if "name" not in table or "baseline" not in table:
            raise ConfigError(f"{where}: needs name and baseline")
        if "output_columns" in table:
            cols = table["output_columns"]
            if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
                raise ConfigError(f"{where}: output_columns must be a list of column names")
            table = {**table, "output_columns": tuple(cols)}
        if "quality" in table:
            table = {**table, "quality": _quality(table["quality"], ground_truth, where)}
        if "bias" in table:
            table = {
                **table,
                "bias": _section(BiasConfig, table["bias"], f"{where} [endpoints.bias]"),
            }
        if "attribution" in table:
            where_a = f"{where} [endpoints.attribution]"
            table = {
                **table,
                "attribution": _section(AttributionConfig, table["attribution"], where_a),
            }
        endpoint = EndpointConfig(**table)
        if endpoint.dataset:
            split_destination(endpoint.dataset)
            if endpoint.dataset_format not in ("", *typing.get_args(Format)):
                raise ConfigError(
                    f"{where}: dataset_format {endpoint.dataset_format!r} is not one of "
                    f"csv, jsonl, parquet"
                )
            if (
                endpoint.output_columns
                or endpoint.preprocessor
                or endpoint.target_model
                or endpoint.quality
                or endpoint.bias
                or endpoint.attribution
            ):
                raise ConfigError(
                    f"{where}: output_columns, preprocessor, target_model, quality, bias and "
                    "attribution read captured records; a dataset's rows hold every column by name"
                )
        elif endpoint.dataset_format or endpoint.partitioned:
            raise ConfigError(f"{where}: dataset_format and partitioned need dataset")
        endpoints.append(endpoint)
    seen = [(e.name, e.variant, e.target_model) for e in endpoints]
    dupes = sorted({"/".join(k) for k in seen if seen.count(k) > 1})
    if dupes:
        raise ConfigError(f"{path}: endpoint(s) listed twice: {', '.join(dupes)}")
    if not endpoints:
        raise ConfigError(f"{path}: no [[endpoints]] to monitor")
    monitor["endpoints"] = tuple(endpoints)
    cfg = MonitorConfig(
        store=store,
        ground_truth=ground_truth,
        **_fields(MonitorConfig, monitor, f"{path} [monitor]"),
    )
    if cfg.schedule and not croniter.is_valid(cfg.schedule):
        raise ConfigError(
            f"{path}: [monitor] schedule {cfg.schedule!r} is not a valid cron expression"
        )
    for key in ("window_minutes", "interval_seconds"):
        if float(getattr(cfg, key)) <= 0:
            raise ConfigError(f"{path}: [monitor] {key} must be > 0")
    check_engine(cfg, f"{path}: [monitor]")
    return cfg


def check_engine(cfg: MonitorConfig, where: str) -> None:
    """ConfigError unless engine, scheduler and workers go together."""
    if cfg.engine not in ENGINES:
        raise ConfigError(f"{where} engine {cfg.engine!r}: expected one of {', '.join(ENGINES)}")
    if cfg.scheduler and cfg.engine != "dask":
        raise ConfigError(f'{where} scheduler {cfg.scheduler!r} needs engine = "dask"')
    if not isinstance(cfg.workers, int) or cfg.workers < 0:
        raise ConfigError(
            f"{where} workers must be a whole number >= 0 (0: from the CPU quota and memory limit)"
        )


async def _read_baseline(uri: str, store_cfg: StoreConfig) -> tuple[Any, Any]:
    store = open_store(uri, store_cfg)
    try:
        stats = orjson.loads(await store.get("statistics.json"))
        constraints = orjson.loads(await store.get("constraints.json"))
    finally:
        await store.close()
    return stats, constraints


async def load_quality(
    q: QualityConfig, ground_truth: GroundTruthConfig, store_cfg: StoreConfig
) -> QualityTarget:
    stats, constraints = await _read_baseline(q.baseline, store_cfg)
    calibration = None
    if (stats.get("modeltap") or {}).get("calibration") is not None:
        calibration = Calibration.from_statistics(stats)
    return QualityTarget(
        ProblemType.parse(q.problem_type),
        stats,
        constraints,
        PredictionSpec(
            inference_index=q.inference_index,
            probability_index=q.probability_index,
            inference_attribute=q.inference_attribute,
            probability_attribute=q.probability_attribute,
            probability_threshold=q.probability_threshold,
        ),
        ground_truth=q.ground_truth or ground_truth.destination,
        label_delay=dt.timedelta(hours=q.label_delay_hours),
        positive_label=q.positive_label
        if q.positive_label is not None
        else (stats.get("modeltap") or {}).get("positive_label"),
        calibration=calibration,
    )


async def _read_json(uri: str, names: tuple[str, ...], store_cfg: StoreConfig) -> list[Any]:
    store = open_store(uri, store_cfg)
    try:
        return [orjson.loads(await store.get(name)) for name in names]
    finally:
        await store.close()


async def load_bias(b: BiasConfig, columns: tuple[str, ...], store_cfg: StoreConfig) -> BiasTarget:
    analysis, constraints = await _read_json(
        b.baseline, ("analysis.json", "constraints.json"), store_cfg
    )
    missing = [c for c in (b.facet, b.group) if c and c not in columns]
    if missing:
        raise ConfigError(
            f"[endpoints.bias] column(s) {', '.join(missing)} are not among the endpoint's "
            f"input columns ({', '.join(columns)})"
        )
    return BiasTarget(
        (b.facet_spec(),),
        analysis,
        constraints,
        b.spec(),
        columns,
        positive_values=(b.positive_label,),
        group=b.group or None,
        bootstrap=b.bootstrap,
    )


async def load_attribution(a: AttributionConfig, store_cfg: StoreConfig) -> AttributionTarget:
    analysis, background = await _read_json(
        a.baseline, ("analysis.json", "background.json"), store_cfg
    )
    return AttributionTarget(
        analysis,
        tuple(background["features"]),
        Background.of(background["rows"], background["weights"]),
        a.client(),
        rows=a.rows,
        nsamples=a.nsamples if a.nsamples is not None else background.get("nsamples"),
        threshold=a.threshold,
    )


async def load_target(
    endpoint: EndpointConfig,
    store_cfg: StoreConfig,
    ground_truth: GroundTruthConfig = GroundTruthConfig(),
) -> Target:
    stats, constraints = await _read_baseline(endpoint.baseline, store_cfg)
    columns = tuple(
        f["name"] for f in stats.get("features", []) if f["name"] not in endpoint.output_columns
    )
    return Target(
        endpoint.name,
        endpoint.variant,
        Profile.from_json(stats),
        constraints,
        target_model=endpoint.target_model,
        output_columns=endpoint.output_columns,
        preprocessor=load_hook(endpoint.preprocessor) if endpoint.preprocessor else None,
        post_analytics=load_hook(endpoint.post_analytics) if endpoint.post_analytics else None,
        batch=BatchDataset(
            endpoint.dataset,
            format=typing.cast(Format, endpoint.dataset_format)
            if endpoint.dataset_format
            else None,
            header=endpoint.dataset_header,
            partitioned=endpoint.partitioned,
        )
        if endpoint.dataset
        else None,
        baseline_uri=endpoint.baseline.rstrip("/"),
        quality=await load_quality(endpoint.quality, ground_truth, store_cfg)
        if endpoint.quality is not None
        else None,
        bias=await load_bias(endpoint.bias, columns, store_cfg) if endpoint.bias else None,
        attribution=await load_attribution(endpoint.attribution, store_cfg)
        if endpoint.attribution
        else None,
    )


def next_run(now: dt.datetime, cfg: MonitorConfig) -> dt.datetime:
    """When the next run starts: the next cron tick, or ``interval_seconds`` from now."""
    if cfg.schedule:
        tick: dt.datetime = croniter(cfg.schedule, now).get_next(dt.datetime)
        return tick
    return now + dt.timedelta(seconds=cfg.interval_seconds)


def window_ending(now: dt.datetime, cfg: MonitorConfig) -> Window:
    end = now - dt.timedelta(minutes=cfg.end_offset_minutes)
    return Window(end - dt.timedelta(minutes=cfg.window_minutes), end)


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
    captures = open_store(cfg.captures, cfg.store)
    reports = open_store(cfg.reports, cfg.store)
    runs: list[tuple[Target, RunResult]] = []
    try:
        for target in targets:
            if target.batch is None:
                labels_uri = (
                    target.quality.ground_truth
                    if target.quality is not None
                    else cfg.ground_truth.destination
                    if target.bias is not None
                    else ""
                )
                labels = open_store(labels_uri, cfg.store) if labels_uri else None
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
                        engine=engine,
                        store_config=cfg.store,
                    )
                finally:
                    await dataset.close()
            runs.append((target, result))
        await compare_variants(runs)
        await write_root_index(reports, [t.endpoint for t in targets])
        for target, result in runs:
            try:
                await write_reports(reports, result, target.baseline)
            except Exception as exc:  # the run's numbers stand; its status says the write failed
                log.exception("writing reports of %s/%s failed", result.endpoint, result.variant)
                result.status, result.error = FAILED, f"reports: {type(exc).__name__}: {exc}"
            log.info(
                "%s/%s %s..%s: %s, %d rows, %d violation(s)%s",
                target.endpoint, target.variant, window.start.isoformat(), window.end.isoformat(),
                result.status, result.rows, len(result.violations),
                f" ({result.error})" if result.error else "",
            )  # fmt: skip
            if collector is not None:
                collector.record(result)
    finally:
        await captures.close()
        await reports.close()
    return [result for _, result in runs]


async def serve(
    cfg: MonitorConfig,
    targets: list[Target],
    evaluate: Evaluator | None,
    engine: Engine | None = None,
) -> None:
    registry = CollectorRegistry()
    collector = AnalyzerCollector(registry)
    register_process_metrics(registry, "analyzer")  # process_*, modeltap_analyzer_build_info
    reports = open_store(cfg.reports, cfg.store)
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
    await web.TCPSite(runner, cfg.host, cfg.port).start()
    log.info("modeltap monitor: metrics on http://%s:%d/metrics, reports on /reports/, "
             "ground truth %s, runs %s", cfg.host, cfg.port,
             "on POST /ground-truth" if ingestor else "from files only (no token)",
             f"on cron {cfg.schedule!r}" if cfg.schedule else f"every {cfg.interval_seconds:g}s")  # fmt: skip
    try:
        now = dt.datetime.now(dt.UTC)
        due = next_run(now, cfg) if cfg.schedule else now
        while True:
            await asyncio.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()))
            await run_all(cfg, targets, window_ending(due, cfg), collector, evaluate, engine)
            due = next_run(max(due, dt.datetime.now(dt.UTC)), cfg)
    finally:
        await runner.cleanup()  # flushes and closes the ingestor (on_cleanup)
        await reports.close()
        if ingestor is not None:
            await ingestor.store.close()


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modeltap monitor", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the monitor's TOML file")
    parser.add_argument("--once", action="store_true", help="run one window per endpoint and exit")
    parser.add_argument("--start", help="with --once: window start (ISO-8601, UTC)")
    parser.add_argument(
        "--end", help="with --once: window end (ISO-8601, UTC; default now - offset)"
    )
    parser.add_argument("--engine", choices=ENGINES, help="overrides [monitor] engine")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="overrides [monitor] scheduler")
    parser.add_argument("--workers", type=int, metavar="N", help="overrides [monitor] workers")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = load_config(args.config)
        flags = {k: getattr(args, k) for k in ("engine", "scheduler", "workers")}
        cfg = dataclasses.replace(cfg, **{k: v for k, v in flags.items() if v is not None})
        check_engine(cfg, "flags:")
        window = window_ending(dt.datetime.now(dt.UTC), cfg)
        if args.end or args.start:
            end = _parse_time(args.end) if args.end else window.end
            start = (
                _parse_time(args.start)
                if args.start
                else end - dt.timedelta(minutes=cfg.window_minutes)
            )
            window = Window(start, end)
    except (ConfigError, ValueError) as exc:
        print(f"modeltap monitor: configuration error: {exc}", file=sys.stderr)
        return 2

    evaluate: Evaluator = evaluate_checks

    try:
        engine = open_engine(cfg.engine, scheduler=cfg.scheduler, workers=cfg.workers)
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"modeltap monitor: engine {cfg.engine}: {exc}", file=sys.stderr)
        return 2

    async def once() -> int:
        targets = [await load_target(e, cfg.store, cfg.ground_truth) for e in cfg.endpoints]
        results = await run_all(cfg, targets, window, evaluate=evaluate, engine=engine)
        return 1 if any(r.status == FAILED for r in results) else 0

    async def forever() -> int:
        targets = [await load_target(e, cfg.store, cfg.ground_truth) for e in cfg.endpoints]
        # Kubernetes stops a pod with SIGTERM, and a container's pid 1 ignores a signal it has
        # no handler for: without this the analyzer sat out the whole grace period and was
        # SIGKILLed on every rollout. SIGTERM stops serving (a run in progress is abandoned, as
        # on any restart) and exits 0.
        task = asyncio.ensure_future(serve(cfg, targets, evaluate, engine))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            log.info("modeltap monitor: stopped on SIGTERM")
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
        return 0

    try:
        return asyncio.run(once() if args.once else forever())
    except ModeltapError as exc:
        print(f"modeltap monitor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        engine.close()
