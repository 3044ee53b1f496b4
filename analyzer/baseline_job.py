"""What every baseline builder of ``modeltap baseline`` reads: the dataset's options (its format
and its columns' types and roles), the store's connection, and the :class:`Job` (the inputs, the
output and each builder's own option tables, ``analyzer.baseline_builder``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from analyzer.errors import AnalyzerError
from analyzer.inference import InferredType
from analyzer.readers import Format, ReadOptions
from analyzer.sources import DataSource
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting
from modeltap.core.store_config import StoreConnection

T = TypeVar("T")


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
class Job:
    """What one ``modeltap baseline`` run reads and writes, and how it reports."""

    inputs: tuple[str, ...]
    output: str
    read: ReadConfig
    columns: ColumnsConfig
    store: BaselineStore
    tables: Mapping[str, Any]  # every builder's option tables, by name ("quality", "profile", ...)
    progress: str = "auto"
    quiet: bool = False

    def table(self, name: str, kind: type[T]) -> T:
        """The option table ``name``, of its declared type."""
        return option_table(self.tables, name, kind)


def option_table(tables: Mapping[str, Any], name: str, kind: type[T]) -> T:
    found = tables.get(name)
    if not isinstance(found, kind):
        raise TypeError(f"baseline option table {name!r} is not a {kind.__name__}")
    return found


def dataset_table(job: Job, columns: list[str] | None = None) -> Any:
    """The dataset as one Arrow table (bias and attribution baselines hold it in memory)."""
    import pyarrow as pa

    source = DataSource(job.inputs, job.read.options(), job.store)
    parts = []
    for _, chunk in source.chunks(columns):
        batch = chunk.batch
        parts.append(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
    if not parts:
        raise AnalyzerError("the dataset has no rows")
    return pa.concat_tables(parts, promote_options="permissive")


def column(table: Any, name: str) -> Any:
    if name not in table.column_names:
        raise AnalyzerError(
            f"column {name!r} is not in the dataset (columns: {', '.join(table.column_names)})"
        )
    return table.column(name).to_numpy(zero_copy_only=False)
