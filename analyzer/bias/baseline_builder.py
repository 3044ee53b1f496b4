"""The bias baseline's builder (``modeltap baseline --bias-facet``): Clarify's post-training
metrics of a labelled validation set with predictions (analysis.json) and their allowed ranges
(constraints.json)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analyzer.baseline import dumps, write_documents
from analyzer.baseline_job import ColumnsConfig, Job, column, dataset_table, option_table
from analyzer.bias.constraints import suggest_constraints
from analyzer.bias.metrics import Facet, compute
from analyzer.errors import AnalyzerError
from analyzer.quality.baseline_builder import quality_options
from analyzer.typed_columns import typed_table
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


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
        try:
            Facet(self.facet, values=self.facet_values or None, threshold=self.facet_threshold)
        except AnalyzerError as exc:
            raise ConfigError(f"--bias-facet: {exc}") from None


def bias_options(tables: Mapping[str, Any]) -> BiasOptions:
    return option_table(tables, "bias", BiasOptions)


class BiasBaseline:
    tables: Mapping[str, type[Any]] = {"bias": BiasOptions}
    alone = False

    def wanted(self, tables: Mapping[str, Any]) -> bool:
        return bool(bias_options(tables).facet)

    def validate(self, columns: ColumnsConfig, tables: Mapping[str, Any]) -> None:
        if self.wanted(tables) and not (
            columns.label and (columns.prediction or quality_options(tables).probability)
        ):
            raise ConfigError("--bias-facet needs --label and --prediction (or --probability)")

    def build(self, job: Job) -> int:
        return run_bias(job)


def run_bias(job: Job) -> int:
    """The bias baseline of a labelled validation set with the model's predictions."""
    b, q = bias_options(job.tables), quality_options(job.tables)
    assert b.facet is not None and job.columns.label is not None  # BiasBaseline.validate
    values = b.facet_values or None
    facet = Facet(b.facet, values=values, threshold=b.facet_threshold)
    roles = {
        job.columns.label,
        job.columns.prediction,
        q.probability,
        b.facet,
        b.group,
    }
    # CSV columns are text: the features get the types the data baseline infers (or --type).
    table = typed_table(
        dataset_table(job),
        job.columns.overrides(),
        threshold=job.columns.mixed_type_threshold,
        keep={r for r in roles if r is not None},
    )
    numeric = [
        n for n in table.column_names
        if n not in roles and np.issubdtype(np.asarray(column(table, n)).dtype, np.number)
    ]  # fmt: skip
    features = np.column_stack([column(table, n) for n in numeric]) if numeric else None
    report = compute(
        {facet.name: column(table, facet.name)},
        [facet],
        y_pred=column(table, job.columns.prediction) if job.columns.prediction else None,
        y_score=column(table, q.probability)
        if q.probability and not job.columns.prediction
        else None,
        probability_threshold=q.probability_threshold,
        y_true=column(table, job.columns.label),
        positive_values=(q.positive_label or "1",),
        label=job.columns.label,
        group=column(table, b.group) if b.group else None,
        features=features,
        bootstrap=b.bootstrap,
    )
    docs = {"analysis.json": dumps(report), "constraints.json": dumps(suggest_constraints(report))}
    names = write_documents(job.output, docs, store_config=job.store)
    if not job.quiet:
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


BIAS_BASELINE = BiasBaseline()
