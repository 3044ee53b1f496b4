"""The options of ``modeltap baseline``: one typed object, declared with the shared machinery.

Each field is an option of the command (its ``flag``) and an environment variable
``MODELTAP_BASELINE_<SECTION>_<FIELD>`` (e.g. ``MODELTAP_BASELINE_STORE_ENDPOINT_URL``); a flag
beats the variable. ``MODELTAP_ANALYZER_STORE_ENDPOINT_URL``, ``_REGION`` and ``_PATH_STYLE``, the
names of earlier releases, still count, below both. ``modeltap baseline --help-config`` prints
the table the README holds.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from analyzer.inference import InferredType
from analyzer.readers import Format, ReadOptions
from modeltap.core.errors import ConfigError
from modeltap.core.settings import env_overrides, flag_overrides, load, setting
from modeltap.core.store_config import StoreConnection

ENV_PREFIX = "MODELTAP_BASELINE_"
LEGACY_STORE_PREFIX = "MODELTAP_ANALYZER_STORE_"  # read for the store keys, below ENV_PREFIX's


@dataclass(frozen=True)
class ReadConfig:
    """input format"""

    format: Literal["", "csv", "jsonl", "parquet"] = setting(
        "", "Input format ('': from each file's name).", flag="--format"
    )
    dataset_format: str = setting(
        "",
        'SageMaker dataset_format, e.g. {"csv": {"header": false}}, {"json": {"lines": true}}, '
        '{"parquet": {}}.',
        flag="--dataset-format",
        metavar="JSON",
    )
    header: bool | None = setting(
        None,
        "CSV has a header line (default); without, columns are _c0, _c1, ...",
        flag="--header",
        negative="--no-header",
    )
    delimiter: str = setting(",", "CSV field delimiter.", flag="--delimiter")
    column_names: tuple[str, ...] = setting(
        (),
        "CSV column names (replace the header or _cN).",
        flag="--column-names",
        metavar="A,B,...",
    )
    null_value: tuple[str, ...] = setting(
        (),
        "CSV text meaning missing (repeatable; default only the empty field), e.g. NA.",
        flag="--null-value",
        metavar="TEXT",
        repeat=True,
    )
    block_mib: int = setting(8, "CSV/JSON bytes parsed at a time, MiB.", min=1, flag="--block-mib")
    batch_rows: int = setting(65536, "Parquet rows per batch.", min=1, flag="--batch-rows")

    def dataset(self) -> dict[str, Any] | None:
        """``--dataset-format`` as ``{"kind": csv|json|parquet, **options}``."""
        if not self.dataset_format:
            return None
        try:
            doc = json.loads(self.dataset_format)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--dataset-format is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or len(doc) != 1:
            raise ConfigError(
                '--dataset-format must be one of {"csv": {...}}, {"json": {...}}, {"parquet": {}}'
            )
        kind, opts = next(iter(doc.items()))
        if kind not in ("csv", "json", "parquet") or not isinstance(opts, dict):
            raise ConfigError(
                f"--dataset-format: unsupported format {kind!r} (csv, json or parquet)"
            )
        if kind == "json" and opts.get("lines", True) is not True:
            raise ConfigError(
                '--dataset-format: only JSON Lines is supported ({"json": {"lines": true}})'
            )
        return {"kind": kind, **opts}

    def validate(self) -> None:
        self.dataset()

    def options(self) -> ReadOptions:
        fmt: Format | None = self.format or None
        header = self.header
        df = self.dataset()
        if df is not None:
            fmt = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[df["kind"]]  # type: ignore[assignment]
            if header is None and "header" in df:
                header = bool(df["header"])
        return ReadOptions(
            format=fmt,
            header=True if header is None else header,
            delimiter=self.delimiter,
            column_names=self.column_names or None,
            null_values=self.null_value or ("",),
            block_bytes=self.block_mib << 20,
            batch_rows=self.batch_rows,
        )


@dataclass(frozen=True)
class ColumnsConfig:
    """types and roles"""

    types: tuple[str, ...] = setting(
        (),
        "Fix a column's type: COLUMN=TYPE, TYPE Integral, Fractional, String or Unknown "
        "(repeatable).",
        flag="--type",
        metavar="COLUMN=TYPE",
        repeat=True,
    )
    label: str | None = setting(None, "Name of the ground-truth label column.", flag="--label")
    prediction: str | None = setting(None, "Name of the model output column.", flag="--prediction")
    mixed_type_threshold: float = setting(
        0.0,
        "Share of non-numeric values a numeric column may hold before it is a String (0.0: "
        "SageMaker's rule); such values are counted as type mismatches.",
        min=0,
        max=1,
        max_exclusive=True,
        flag="--mixed-type-threshold",
        metavar="F",
    )
    allow_empty_columns: bool = setting(
        False,
        "Keep columns whose values are all missing (type Unknown) instead of failing.",
        flag="--allow-empty-columns",
    )

    def overrides(self) -> dict[str, InferredType]:
        out: dict[str, InferredType] = {}
        for text in self.types:
            name, sep, value = text.rpartition("=")
            if not sep or not name:
                raise ConfigError(f"--type: expected COLUMN=TYPE, got {text!r}")
            try:
                out[name] = InferredType(value)
            except ValueError:
                allowed = ", ".join(t.value for t in InferredType)
                raise ConfigError(
                    f"--type: type {value!r} for {name!r}: use one of {allowed}"
                ) from None
        return out

    def validate(self) -> None:
        self.overrides()


@dataclass(frozen=True)
class QualityOptions:
    """model quality

    With --problem-type the dataset is a labelled validation set: --label and --prediction (or,
    binary, --probability) name its columns, and the output is the model-quality baseline
    (metrics as statistics.json, thresholds as constraints.json) that `modeltap monitor`'s
    [endpoints.quality] points at."""

    problem_type: Literal["", "Regression", "BinaryClassification", "MulticlassClassification"] = (
        setting("", "Build the model-quality baseline of this problem type.", flag="--problem-type")
    )
    probability: str | None = setting(
        None, "Binary: the column of the positive label's probability.", flag="--probability"
    )
    probability_threshold: float = setting(
        0.5,
        "Binary: probability at or above which the label is positive.",
        flag="--probability-threshold",
        metavar="F",
    )
    positive_label: str | None = setting(
        None, "Binary: the positive label (default 1 / true / yes).", flag="--positive-label"
    )
    window_rows: int | None = setting(
        None,
        "Rows a monitoring window usually has: thresholds allow for its sampling noise.",
        min=1,
        flag="--window-rows",
        metavar="N",
    )


@dataclass(frozen=True)
class BiasOptions:
    """bias

    With --bias-facet the dataset is a labelled validation set with predictions (--label,
    --prediction or --probability): the output is the bias baseline (analysis.json with
    Clarify's post-training metrics, constraints.json with their allowed ranges)."""

    facet: str | None = setting(
        None, "The sensitive attribute's column.", flag="--bias-facet", metavar="COLUMN"
    )
    facet_threshold: float | None = setting(
        None,
        "The disadvantaged group is the rows above X ...",
        flag="--bias-facet-threshold",
        metavar="X",
    )
    facet_values: tuple[str, ...] = setting(
        (), "... or the rows holding these categories.", flag="--bias-facet-values", metavar="A,B"
    )
    group: str | None = setting(
        None, "Group variable for CDDPL.", flag="--bias-group", metavar="COLUMN"
    )
    bootstrap: int = setting(200, "Bootstrap resamples.", min=0, flag="--bias-bootstrap")

    def validate(self) -> None:
        if self.facet is None:
            return
        from analyzer.bias import Facet
        from analyzer.errors import AnalyzerError

        try:
            Facet(self.facet, values=self.facet_values or None, threshold=self.facet_threshold)
        except AnalyzerError as exc:
            raise ConfigError(f"--bias-facet: {exc}") from None


@dataclass(frozen=True)
class AttributionOptions:
    """feature attribution

    With --attribution the dataset is training data: Kernel SHAP of a sample of it against the
    model at --model-url gives the baseline's global attributions (analysis.json) and the
    background rows the monitor reuses (background.json)."""

    enabled: bool = setting(False, "Build the feature-attribution baseline.", flag="--attribution")
    model_url: str = setting(
        "", "The model's scoring URL (e.g. http://model:8080/invocations).", flag="--model-url"
    )
    model_content_type: Literal["text/csv", "application/json"] = setting(
        "text/csv", "How rows are sent to the model.", flag="--model-content-type"
    )
    score_index: int = setting(0, "CSV responses: the score's column.", flag="--score-index")
    score_path: str | None = setting(
        None, "JSON responses: the path of each row's score.", flag="--score-path"
    )
    outputs: tuple[int, ...] = setting(
        (), "Several outputs: these CSV columns / positions in each row's scores list.",
        flag="--outputs", metavar="I,J,...",
    )  # fmt: skip
    all_outputs: bool = setting(
        False, "... or every output of each row, each explained.", flag="--all-outputs"
    )
    output_labels: tuple[str, ...] = setting(
        (), "Names of the explained outputs (default label0, label1, ...).",
        flag="--output-labels", metavar="A,B,...",
    )  # fmt: skip
    features: tuple[str, ...] = setting(
        (), "The model's input columns, in order.", flag="--features", metavar="A,B,..."
    )
    background_k: int = setting(5, "k-means background rows.", min=1, flag="--background-k")
    explain_rows: int = setting(100, "Rows explained.", min=1, flag="--explain-rows")
    nsamples: int | None = setting(
        None, "Coalitions per row (default: all when few).", min=1, flag="--nsamples"
    )

    def client(self, **limits: Any) -> Any:
        """The model client of these options (an ``analyzer.attribution`` ModelClientConfig)."""
        from analyzer.attribution.outputs import client_config

        return client_config(
            self.model_url,
            content_type=self.model_content_type,
            score_index=self.score_index,
            score_path=self.score_path,
            outputs=self.outputs,
            all_outputs=self.all_outputs,
            **limits,
        )

    def validate(self) -> None:
        if not (self.enabled and self.model_url):
            return
        from analyzer.errors import AnalyzerError

        try:
            self.client()
        except (AnalyzerError, ValueError) as exc:
            raise ConfigError(f"--model-url: {exc}") from None


@dataclass(frozen=True)
class LLMOptions:
    """LLM prompts and answers

    With --llm the inputs are JSON Lines of past OpenAI-compatible exchanges
    ({"request": ..., "response": ...}) or capture records: the output is the LLM baseline
    (statistics.json and constraints.json of the exchanges' descriptors, llm.json of the settings)
    that `modeltap monitor`'s [endpoints.llm] points at."""

    enabled: bool = setting(False, "Build the LLM baseline.", flag="--llm")
    refusal_patterns: tuple[str, ...] = setting(
        (),
        "A refusal in an answer's first 400 characters (RE2 syntax, case-insensitive; "
        "repeatable; default: common English refusals).",
        flag="--llm-refusal-pattern",
        metavar="REGEX",
        repeat=True,
    )
    pii_patterns: tuple[str, ...] = setting(
        ("card", "phone", "email"),
        "Personal-data patterns counted in prompts and answers (card, phone, email).",
        flag="--llm-pii-patterns",
        metavar="A,B",
    )
    ngram: int = setting(
        2, "Words per n-gram of the content-drift signal.", min=1, max=5, flag="--llm-ngram"
    )
    ngram_buckets: int = setting(
        64,
        "Hash buckets of the content-drift n-grams.",
        min=2,
        max=4096,
        flag="--llm-ngram-buckets",
    )

    def descriptor_settings(self) -> Any:
        """The ``analyzer.llm.descriptors.DescriptorSettings`` of these options."""
        from analyzer.llm.descriptors import DEFAULT_REFUSAL_PATTERNS, DescriptorSettings

        try:
            return DescriptorSettings(
                refusal_patterns=self.refusal_patterns or DEFAULT_REFUSAL_PATTERNS,
                pii_patterns=self.pii_patterns,
                ngram=self.ngram,
                ngram_buckets=self.ngram_buckets,
            )
        except ValueError as exc:
            raise ConfigError(f"--llm: {exc}") from None

    def validate(self) -> None:
        if self.enabled:
            self.descriptor_settings()


@dataclass(frozen=True)
class ConstraintsOptions:
    """suggested constraints"""

    completeness_tolerance: float = setting(
        0.0,
        "Write each observed completeness minus F, a fixed floor (0: the observed share, tested "
        "for a significant rise).",
        min=0,
        max=1,
        flag="--completeness-tolerance",
        metavar="F",
    )
    domain_max_values: int = setting(
        20,
        "String columns with at most N distinct values get a domain list.",
        min=0,
        flag="--domain-max-values",
        metavar="N",
    )
    comparison_threshold: float = setting(
        0.1, "Drift distance threshold.", min=0, flag="--comparison-threshold", metavar="F"
    )
    comparison_method: Literal["Simple", "Robust"] = setting(
        "Robust", "Numeric drift comparison.", flag="--comparison-method"
    )
    categorical_drift_method: Literal["LInfinity", "ChiSquared"] = setting(
        "LInfinity", "Categorical drift comparison.", flag="--categorical-drift-method"
    )


@dataclass(frozen=True)
class ProfileOptions:
    """summary sizes"""

    kll_k: int = setting(
        2048, "KLL sketch k (2048: 0.18% CDF rank error).", min=8, max=65535, flag="--kll-k"
    )
    bins: int = setting(1000, "Quantile-anchored bins per numeric column.", min=1, flag="--bins")
    category_cap: int = setting(
        10_000, "Distinct strings counted exactly.", min=1, flag="--category-cap"
    )
    cpc_lg_k: int = setting(
        12, "log2 size of the distinct-count sketch.", min=4, max=26, flag="--cpc-lg-k"
    )


@dataclass(frozen=True)
class BaselineStore(StoreConnection):
    """object store (s3:// inputs and output)

    Credentials come from botocore's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
    AWS_PROFILE, web identity, instance metadata)."""

    region: str = setting(
        "",
        "S3 region ('': botocore's, from AWS_REGION, AWS_DEFAULT_REGION or the profile).",
        flag="--store-region",
    )
    endpoint_url: str = setting(
        "",
        "Endpoint of an S3-compatible store (SeaweedFS, MinIO, Ceph), e.g. http://127.0.0.1:8333 "
        "('': AWS S3).",
        flag="--store-endpoint-url",
        metavar="URL",
    )
    path_style: bool = setting(
        False,
        "Path-style addressing (the bucket in the path, as most S3-compatible stores need).",
        flag="--store-path-style",
        negative="--no-store-path-style",
    )


@dataclass(frozen=True)
class ScaleOutOptions:
    """scale-out

    Both passes profile file by file on a pool of local processes (default, one per usable core;
    a dataset under 32 MiB or a single file stays in this process) or on a Dask cluster."""

    engine: Literal["local", "dask"] = setting(
        "local", "Local processes, or a Dask cluster.", flag="--engine"
    )
    scheduler: str = setting(
        "",
        "dask: the scheduler, e.g. tcp://dask-scheduler:8786 ('': start a LocalCluster).",
        flag="--scheduler",
        metavar="ADDRESS",
    )
    workers: int = setting(
        0,
        "Local processes, or LocalCluster workers (0: the usable cores the memory limit has "
        "room for; 1: in this process).",
        min=0,
        flag="--workers",
        metavar="N",
    )


@dataclass(frozen=True)
class BaselineConfig:
    read: ReadConfig = ReadConfig()
    columns: ColumnsConfig = ColumnsConfig()
    quality: QualityOptions = QualityOptions()
    bias: BiasOptions = BiasOptions()
    attribution: AttributionOptions = AttributionOptions()
    llm: LLMOptions = LLMOptions()
    constraints: ConstraintsOptions = ConstraintsOptions()
    profile: ProfileOptions = ProfileOptions()
    store: BaselineStore = BaselineStore()
    scaleout: ScaleOutOptions = ScaleOutOptions()

    def validate(self) -> None:
        if self.quality.problem_type and not self.columns.label:
            raise ConfigError("--problem-type needs --label (the ground-truth column)")
        if self.bias.facet and not (
            self.columns.label and (self.columns.prediction or self.quality.probability)
        ):
            raise ConfigError("--bias-facet needs --label and --prediction (or --probability)")
        if self.attribution.enabled and not self.attribution.model_url:
            raise ConfigError("--attribution needs --model-url")
        modes = [m for m, on in (("--problem-type", bool(self.quality.problem_type)),
                                 ("--bias-facet", bool(self.bias.facet)),
                                 ("--attribution", self.attribution.enabled),
                                 ("--llm", self.llm.enabled)) if on]  # fmt: skip
        if "--llm" in modes and len(modes) > 1:
            raise ConfigError(f"{' and '.join(modes)}: one kind of baseline at a time")


def load_baseline_config(args: argparse.Namespace, environ: Mapping[str, str]) -> BaselineConfig:
    """The options parsed by ``add_arguments(parser, BaselineConfig)`` over the environment."""
    given = {
        f"store.{name.lower()}": (var, value)
        for var, value in environ.items()
        if var.startswith(LEGACY_STORE_PREFIX)
        and value.strip()  # empty: unset, as before
        and (name := var.removeprefix(LEGACY_STORE_PREFIX))
        in ("ENDPOINT_URL", "REGION", "PATH_STYLE")
    }
    given.update(env_overrides(BaselineConfig, ENV_PREFIX, environ))
    given.update(flag_overrides(args, BaselineConfig))
    return load(BaselineConfig, env_prefix=ENV_PREFIX, environ={}, overrides=given)
