"""The monitor's configuration (``modeltap monitor --config monitor.toml``): one typed object.

Declared with the shared machinery (``modeltap.core.settings``), so each key is documented,
typed and bounded in one place; ``modeltap monitor --help-config`` prints the table the README
holds. The keys of ``[monitor]``, ``[store]`` and ``[ground_truth]`` can also be set by
``MODELTAP_MONITOR_<TABLE>_<KEY>`` environment variables (e.g.
``MODELTAP_MONITOR_STORE_ENDPOINT_URL``), which beat the file; the monitor's flags
(``--engine``, ``--scheduler``, ``--workers``, ``--strict-constraints``) beat both.
``[[endpoints]]`` and their sub-tables are only in the file.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from croniter import croniter

from analyzer.attribution.client import ModelClientConfig
from analyzer.attribution.outputs import client_config
from analyzer.bias import Facet
from analyzer.errors import AnalyzerError
from analyzer.groundtruth import PredictionSpec
from analyzer.quality import ProblemType
from modeltap.core.errors import ConfigError
from modeltap.core.settings import REQUIRED, load, setting
from modeltap.core.store import split_destination
from modeltap.core.store_config import StoreConnection

ENV_PREFIX = "MODELTAP_MONITOR_"

DatasetFormat = Literal["", "csv", "jsonl", "parquet"]


def _checked(what: str, check: typing.Callable[[], object]) -> None:
    """Run a constructor that validates its arguments; its complaint is a ConfigError."""
    try:
        check()
    except ConfigError:
        raise
    except (AnalyzerError, ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class QualityConfig:
    """``[endpoints.quality]``: model-quality monitoring of one endpoint/variant."""

    problem_type: str = setting(
        REQUIRED, "Regression, BinaryClassification or MulticlassClassification."
    )
    baseline: str = setting(
        REQUIRED,
        "`modeltap baseline --problem-type` output (statistics.json + constraints.json).",
    )
    ground_truth: str = setting(
        "", "The labels' prefix (s3:// or file://); default: [ground_truth] destination."
    )
    inference_index: int | None = setting(None, "CSV output: the label's column.")
    probability_index: int | None = setting(None, "CSV output: the probability's column.")
    inference_attribute: str | None = setting(
        None, "JSON output: path of the label, e.g. predictions[*]."
    )
    probability_attribute: str | None = setting(None, "JSON output: path of the probability.")
    probability_threshold: float = setting(
        0.5, "Binary: probability at or above which the label is positive."
    )
    positive_label: str | None = setting(
        None, "Binary: the positive label (default: the baseline's)."
    )
    label_delay_hours: float = setting(
        0.0, "Realised metrics cover the window shifted back this much.", min=0
    )

    def spec(self) -> PredictionSpec:
        return PredictionSpec(
            inference_index=self.inference_index,
            probability_index=self.probability_index,
            inference_attribute=self.inference_attribute,
            probability_attribute=self.probability_attribute,
            probability_threshold=self.probability_threshold,
        )

    def validate(self) -> None:
        _checked("problem_type", lambda: ProblemType.parse(self.problem_type))
        _checked("prediction", self.spec)
        split_destination(self.baseline)
        if self.ground_truth:
            split_destination(self.ground_truth)


@dataclass(frozen=True, kw_only=True)
class BiasConfig:
    """``[endpoints.bias]``: bias drift across a sensitive attribute (an input column)."""

    baseline: str = setting(
        REQUIRED, "`modeltap baseline --bias-facet ...` output (analysis.json + constraints.json)."
    )
    facet: str = setting(REQUIRED, "The input column of the sensitive attribute.")
    facet_threshold: float | None = setting(
        None, "The disadvantaged group: the rows whose facet is above this ..."
    )
    facet_values: tuple[str | int | float, ...] = setting(
        (), "... or holding these categories (neither: each value in turn)."
    )
    group: str = setting("", "An input column for CDDPL (conditional demographic disparity).")
    positive_label: str = setting("1", "The positive label.")
    inference_index: int | None = setting(None, "As [endpoints.quality] inference_index.")
    probability_index: int | None = setting(None, "As [endpoints.quality] probability_index.")
    inference_attribute: str | None = setting(None, "As [endpoints.quality] inference_attribute.")
    probability_attribute: str | None = setting(
        None, "As [endpoints.quality] probability_attribute."
    )
    probability_threshold: float = setting(0.5, "As [endpoints.quality] probability_threshold.")
    bootstrap: int = setting(200, "Resamples for the window's confidence interval.", min=0)

    def spec(self) -> PredictionSpec:
        return PredictionSpec(
            inference_index=self.inference_index,
            probability_index=self.probability_index,
            inference_attribute=self.inference_attribute,
            probability_attribute=self.probability_attribute,
            probability_threshold=self.probability_threshold,
        )

    def facet_spec(self) -> Facet:
        values = tuple(str(v) for v in self.facet_values) or None
        return Facet(self.facet, values=values, threshold=self.facet_threshold)

    def validate(self) -> None:
        _checked("prediction", self.spec)
        _checked("facet", self.facet_spec)
        split_destination(self.baseline)


@dataclass(frozen=True, kw_only=True)
class AttributionConfig:
    """``[endpoints.attribution]``: feature-attribution drift by Kernel SHAP against the model."""

    baseline: str = setting(
        REQUIRED, "`modeltap baseline --attribution ...` output (analysis.json + background.json)."
    )
    model_url: str = setting(
        REQUIRED, "Where to score synthetic rows: a shadow model, never the live sidecar."
    )
    content_type: Literal["text/csv", "application/json"] = setting(
        "text/csv", 'Request body: CSV rows, or JSON {"instances": [...]}.'
    )
    score_index: int | None = setting(0, "CSV responses: the score's column.")
    score_path: str | None = setting(None, "JSON responses: the path of each row's score.")
    outputs: tuple[int, ...] = setting(
        (), "Several outputs: these CSV columns / positions in each row's scores list."
    )
    all_outputs: bool = setting(False, "... or every output of each row, each explained.")
    output_labels: tuple[str, ...] = setting(
        (), "Names of the explained outputs (default: the baseline's, label0, label1, ...)."
    )
    rows: int = setting(50, "Window rows explained per run.", min=1)
    nsamples: int | None = setting(None, "Coalitions per row (default: the baseline's).")
    threshold: float = setting(
        0.9, "NDCG below this is a violation.", min=0, min_exclusive=True, max=1
    )
    rows_per_request: int = setting(500, "Rows scored per request to the model.", min=1)
    max_concurrency: int = setting(2, "Requests to the model at once.", min=1)
    requests_per_second: float = setting(
        10.0, "Requests to the model per second at most.", min=0, min_exclusive=True
    )

    def client(self) -> ModelClientConfig:
        return client_config(
            self.model_url,
            content_type=self.content_type,
            score_index=self.score_index,
            score_path=self.score_path,
            outputs=self.outputs,
            all_outputs=self.all_outputs,
            rows_per_request=self.rows_per_request,
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
        )

    def validate(self) -> None:
        _checked("model client", self.client)
        split_destination(self.baseline)


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """``[endpoints.llm]``: descriptors of OpenAI-compatible exchanges (prompts and answers)."""

    baseline: str = setting(
        REQUIRED,
        "`modeltap baseline --llm` output (statistics.json, constraints.json and llm.json).",
    )

    def validate(self) -> None:
        split_destination(self.baseline)


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """``[[endpoints]]``: one endpoint/variant (or one batch dataset) and its baseline."""

    name: str = setting(REQUIRED, "The endpoint's name (capture.endpoint_name of its sidecar).")
    baseline: str = setting(
        "",
        "Prefix holding its statistics.json and constraints.json (s3:// or file://); "
        "required unless [endpoints.llm] is set ('': no tabular checks).",
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
    quality: QualityConfig | None = None
    bias: BiasConfig | None = None
    attribution: AttributionConfig | None = None
    llm: LLMConfig | None = None

    def validate(self) -> None:
        if not self.baseline and (self.llm is None or self.dataset):
            raise ConfigError(
                "baseline is required (only an endpoint with [endpoints.llm] may omit it)"
            )
        if self.baseline:
            split_destination(self.baseline)
        if self.dataset:
            split_destination(self.dataset)
            if self.output_columns or self.preprocessor or self.target_model or self.llm:
                raise ConfigError(
                    "output_columns, preprocessor, target_model and llm read captured records; "
                    "a dataset's rows hold every column by name"
                )
            if (self.quality or self.bias) and not (
                self.prediction_column or self.probability_column
            ):
                raise ConfigError(
                    "quality and bias of a dataset need prediction_column or probability_column"
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

    def validate(self) -> None:
        split_destination(self.captures)
        split_destination(self.reports)
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
            if e.quality is not None and not (
                e.quality.ground_truth or self.ground_truth.destination or e.label_column
            ):
                raise ConfigError(
                    f"endpoints[{i + 1}].quality needs ground_truth, or ground_truth.destination"
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
