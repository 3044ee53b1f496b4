"""The model-quality baseline's builder (``modeltap baseline --problem-type``): a labelled
validation set's metrics (statistics.json) and their thresholds (constraints.json)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from analyzer.baseline import dumps, write_documents
from analyzer.baseline_job import ColumnsConfig, Job, option_table
from analyzer.errors import DataError
from analyzer.quality.baseline import QualityColumns, build_quality_baseline
from analyzer.quality.labels import ProblemType
from analyzer.readers import Chunk
from analyzer.sources import DataSource
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


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


def quality_options(tables: Mapping[str, Any]) -> QualityOptions:
    """--problem-type's table (bias reads its --probability, threshold and positive label too)."""
    return option_table(tables, "quality", QualityOptions)


class QualityBaseline:
    tables: Mapping[str, type[Any]] = {"quality": QualityOptions}
    alone = False

    def wanted(self, tables: Mapping[str, Any]) -> bool:
        return bool(quality_options(tables).problem_type)

    def validate(self, columns: ColumnsConfig, tables: Mapping[str, Any]) -> None:
        if self.wanted(tables) and not columns.label:
            raise ConfigError("--problem-type needs --label (the ground-truth column)")

    def build(self, job: Job) -> int:
        return run_quality(job)


def run_quality(job: Job) -> int:
    """The model-quality baseline of a labelled validation set."""
    q = quality_options(job.tables)
    assert job.columns.label is not None  # QualityBaseline.validate
    columns = QualityColumns(
        ProblemType.parse(q.problem_type),
        label=job.columns.label,
        prediction=job.columns.prediction,
        probability=q.probability,
        probability_threshold=q.probability_threshold,
        positive_label=q.positive_label,
    )
    store = job.store
    source = DataSource(job.inputs, job.read.options(), store)
    wanted = [c for c in (job.columns.label, job.columns.prediction, q.probability) if c]

    def chunks() -> Iterator[Chunk]:
        for f, chunk in source.chunks(wanted):  # only the wanted columns are decoded ...
            have = chunk.file_columns or tuple(chunk.batch.schema.names)
            missing = [c for c in wanted if c not in have]
            if missing:  # ... so name the columns the file has
                raise DataError(
                    f"no column {', '.join(map(repr, missing))} (columns: {', '.join(have)})",
                    file=f.name,
                )
            yield chunk

    stats, cons = build_quality_baseline(chunks(), columns, window_rows=q.window_rows)
    names = write_documents(
        job.output,
        {"statistics.json": dumps(stats), "constraints.json": dumps(cons)},
        store_config=store,
    )
    if not job.quiet:
        section = stats[columns.problem_type.section]
        shown = ", ".join(
            f"{k} {v['value']:.4g}"
            for k, v in section.items()
            if isinstance(v, dict) and isinstance(v.get("value"), float)
        )
        print(f"{stats['dataset']['item_count']:,} labelled rows: {shown}", file=sys.stderr)
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


QUALITY_BASELINE = QualityBaseline()
