"""The monitor's configuration (``modeltap monitor --config monitor.toml``): one typed object.

Declared with the shared machinery (``modeltap.core.settings``), so each key is documented,
typed and bounded in one place; ``modeltap monitor --help-config`` prints the table the README
holds. The keys of ``[monitor]``, ``[store]`` and ``[ground_truth]`` can also be set by
``MODELTAP_MONITOR_<TABLE>_<KEY>`` environment variables (e.g.
``MODELTAP_MONITOR_STORE_ENDPOINT_URL``), which beat the file; the monitor's flags
(``--engine``, ``--scheduler``, ``--workers``, ``--strict-constraints``) beat both.
``[[endpoints]]`` and their sub-tables are only in the file; each registered section that declares
a table (``Section.config_type``, e.g. ``analyzer.quality.config.QualityConfig``) has its
``[endpoints.<section>]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from croniter import croniter

from analyzer.registry import SECTIONS
from analyzer.report_history import DEFAULT_KEEP
from analyzer.section_config import (
    PredictionFields,
    needs_ground_truth,
    reads_captures,
    stands_alone,
)
from modeltap.core.errors import ConfigError
from modeltap.core.settings import REQUIRED, load, setting, subtables
from modeltap.core.store import split_destination
from modeltap.core.store_config import StoreConnection

ENV_PREFIX = "MODELTAP_MONITOR_"

DatasetFormat = Literal["", "csv", "jsonl", "parquet"]


def section_tables() -> dict[str, type[Any]]:
    """``[endpoints.<name>]``: the table of each registered section that declares one."""
    return {s.name: s.config_type for s in SECTIONS if s.config_type is not None}


def stands_alone_tables() -> list[str]:
    """The sections whose table lets an endpoint go without a data baseline."""
    return [n for n, t in section_tables().items() if stands_alone(t)]


def captured_tables() -> list[str]:
    """The sections that read captured records only (none of them on a batch dataset)."""
    return [n for n, t in section_tables().items() if reads_captures(t)]


def predicted_tables() -> list[str]:
    """The sections that read the model's prediction (a dataset's prediction/probability)."""
    return [n for n, t in section_tables().items() if issubclass(t, PredictionFields)]


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """``[[endpoints]]``: one endpoint/variant (or one batch dataset) and its baseline."""

    name: str = setting(REQUIRED, "The endpoint's name (capture.endpoint_name of its sidecar).")
    baseline: str = setting(
        "",
        "Prefix holding its statistics.json and constraints.json (s3:// or file://); "
        "required unless [endpoints.llm] is set ('': no data-quality checks).",
    )
    variant: str = setting(
        "AllTraffic", "The variant (capture.variant_name); the first one is what others compare to."
    )
    target_model: str = setting(
        "", "Monitor one model of a multi-model server (its X-Target-Model value)."
    )
    output_columns: tuple[str, ...] = setting(
        (), "Baseline columns that come from endpointOutput, in order."
    )
    preprocessor: str = setting(
        "", "'module:function' or '/path/script.py:function' (SageMaker's preprocess_handler)."
    )
    post_analytics: str = setting(
        "", "'module:function' (postprocess_handler); may add custom numbers."
    )
    dataset: str = setting(
        "", "A batch job's tables (s3:// or file:// prefix) instead of captures."
    )
    dataset_format: DatasetFormat = setting("", "csv, jsonl or parquet ('': by file name).")
    dataset_header: bool = setting(True, "CSV files of the dataset start with a header line.")
    partitioned: bool = setting(
        False, "Dataset objects under yyyy/mm/dd/hh/ (else chosen by last-modified time)."
    )
    label_column: str = setting("", "Dataset: the ground-truth column (quality, bias).")
    prediction_column: str = setting("", "Dataset: the predicted-label column (quality, bias).")
    probability_column: str = setting(
        "", "Dataset: the probability column (binary; the label when no prediction_column)."
    )
    id_column: str = setting(
        "", "Dataset: the row id joined with ground truth (when no label_column)."
    )
    sections: Mapping[str, Any] = subtables(
        section_tables, "Each section's [endpoints.<section>] table given, by section name."
    )

    def validate(self) -> None:
        alone = [name for name, table in self.sections.items() if stands_alone(table)]
        if not self.baseline and (not alone or self.dataset):
            raise ConfigError(
                "baseline is required (only an endpoint with "
                f"{' or '.join(f'[endpoints.{n}]' for n in stands_alone_tables())} may omit it)"
            )
        if self.baseline:
            split_destination(self.baseline)
        if self.dataset:
            split_destination(self.dataset)
            captured = [name for name, table in self.sections.items() if reads_captures(table)]
            if self.output_columns or self.preprocessor or self.target_model or captured:
                raise ConfigError(
                    "output_columns, preprocessor, target_model and "
                    f"{' and '.join(captured_tables())} read captured records; "
                    "a dataset's rows hold every column by name"
                )
            predicted = [n for n, t in self.sections.items() if isinstance(t, PredictionFields)]
            if predicted and not (self.prediction_column or self.probability_column):
                raise ConfigError(
                    f"{' and '.join(predicted_tables())} of a dataset need prediction_column "
                    "or probability_column"
                )
        elif self.dataset_format or self.partitioned or self.dataset_columns():
            raise ConfigError("dataset_format, partitioned and the *_column settings need dataset")

    def dataset_columns(self) -> list[str]:
        """The role columns set for a dataset (label, prediction, probability, id)."""
        return [c for c in (self.label_column, self.prediction_column,
                            self.probability_column, self.id_column) if c]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class MonitorSettings:
    """``[monitor]``: where captures and reports live, the window, the schedule, the engine."""

    captures: str = setting(
        REQUIRED, "Where the sidecars store capture records (s3:// or file://)."
    )
    reports: str = setting(
        REQUIRED, "Where statistics.json / constraint_violations.json go (s3:// or file://)."
    )
    window_minutes: float = setting(
        60.0, "Each run analyses this many minutes of traffic ...", min=0, min_exclusive=True
    )
    end_offset_minutes: float = setting(
        0.0, "... ending this long before the run, so late files are in."
    )
    interval_seconds: float = setting(
        300.0, "Continuous mode: one run every this many seconds ...", min=0, min_exclusive=True
    )
    schedule: str = setting(
        "", "... or on this cron expression (UTC), like SageMaker's; overrides interval_seconds."
    )
    host: str = setting("0.0.0.0", "Address of /metrics, /healthz and /reports/ (continuous mode).")
    port: int = setting(9091, "Port of /metrics, /healthz and /reports/.", min=0, max=65535)
    strict_constraints: bool = setting(
        False, "A constraints.json key the checks do not read stops the start (else: a warning)."
    )
    engine: Literal["local", "dask"] = setting(
        "local", "Where objects are profiled: local processes, or a Dask cluster."
    )
    scheduler: str = setting(
        "", "dask: the scheduler's address, e.g. tcp://dask-scheduler:8786 ('': a LocalCluster)."
    )
    workers: int = setting(
        0,
        "Local processes or LocalCluster workers (0: the usable cores, capped by the memory limit).",
        min=0,
    )
    keep_reports: int = setting(
        DEFAULT_KEEP,
        "Runs whose reports are kept per endpoint; older runs' files are deleted.",
        min=1,
    )
    profile_cache: bool = setting(
        True, "Profile each capture object once and reuse its partial profile in later windows."
    )
    cache: str = setting(
        "", "Where partial profiles are kept (s3:// or file://; empty: {reports}/_cache/)."
    )
    cache_max_entries: int = setting(
        20000, "Most cached partial profiles per endpoint/variant; the oldest go first.", min=1
    )

    def validate(self) -> None:
        split_destination(self.captures)
        split_destination(self.reports)
        if self.cache:
            split_destination(self.cache)
        if self.schedule and not croniter.is_valid(self.schedule):
            raise ConfigError(f"monitor.schedule={self.schedule!r}: not a valid cron expression")
        if self.scheduler and self.engine != "dask":
            raise ConfigError(f"monitor.scheduler={self.scheduler!r} needs monitor.engine='dask'")


@dataclass(frozen=True, kw_only=True)
class GroundTruthConfig:
    """``[ground_truth]``: where labels live and the analyzer's ``POST /ground-truth``."""

    destination: str = setting(
        "", "s3:// or file:// prefix; labels under {endpoint}/{variant}/yyyy/mm/dd/hh/."
    )
    token_env: str = setting(
        "MODELTAP_GROUND_TRUTH_TOKEN",
        "Environment variable holding the POST bearer token (unset: no POST /ground-truth).",
    )
    token_file: str = setting(
        "", "... or a file holding it (a mounted Secret); wins over token_env."
    )
    max_body_mib: int = setting(16, "Largest POST /ground-truth body, MiB.", min=1)

    def validate(self) -> None:
        if self.destination:
            split_destination(self.destination)

    def token(self) -> str:
        """The bearer token ('' when none is configured: the endpoint answers 404)."""
        if self.token_file:
            try:
                return Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"ground_truth.token_file {self.token_file}: {exc.strerror}"
                ) from exc
        return os.environ.get(self.token_env, "").strip()


@dataclass(frozen=True, kw_only=True)
class MonitorConfig:
    """The whole monitor.toml."""

    monitor: MonitorSettings
    store: StoreConnection = StoreConnection()
    ground_truth: GroundTruthConfig = GroundTruthConfig()
    endpoints: tuple[EndpointConfig, ...] = ()

    def validate(self) -> None:
        if not self.endpoints:
            raise ConfigError("no [[endpoints]] to monitor")
        seen = [(e.name, e.variant, e.target_model) for e in self.endpoints]
        dupes = sorted({"/".join(k) for k in seen if seen.count(k) > 1})
        if dupes:
            raise ConfigError(f"endpoint(s) listed twice: {', '.join(dupes)}")
        for i, e in enumerate(self.endpoints):
            for name, table in e.sections.items():
                if (
                    needs_ground_truth(table)
                    and not self.ground_truth.destination
                    and not e.label_column
                ):
                    raise ConfigError(
                        f"endpoints[{i + 1}].{name} needs ground_truth, or ground_truth.destination"
                        + (", or label_column" if e.dataset else "")
                    )


def load_config(
    path: Path,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, tuple[str, Any]] | None = None,
) -> MonitorConfig:
    """Read and validate monitor.toml under the ``MODELTAP_MONITOR_*`` variables (default: this
    process's) and the command's ``flags`` (``{"monitor.engine": ("--engine", "dask")}``)."""
    return load(
        MonitorConfig,
        env_prefix=ENV_PREFIX,
        environ=os.environ if environ is None else environ,
        file=path,
        overrides=flags,
    )
