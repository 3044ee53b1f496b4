"""The attribution baseline's builder (``modeltap baseline --attribution``): Kernel SHAP of a
training sample against the model (analysis.json) and the background rows the monitor reuses
(background.json)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from analyzer.attribution.client import ModelClient, ModelClientConfig
from analyzer.attribution.kernel_shap import KernelExplainer, explain_async, summarize
from analyzer.attribution.ndcg import report
from analyzer.attribution.outputs import client_config, output_names
from analyzer.attribution.run import sample_rows
from analyzer.baseline import dumps, write_documents
from analyzer.baseline_job import ColumnsConfig, Job, column, dataset_table, option_table
from analyzer.errors import AnalyzerError
from analyzer.quality.baseline_builder import quality_options
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


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

    def client(self, **limits: Any) -> ModelClientConfig:
        """The model client of these options (one output, or several: ``outputs``)."""
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
        try:
            self.client()
        except (AnalyzerError, ValueError) as exc:
            raise ConfigError(f"--model-url: {exc}") from None


def attribution_options(tables: Mapping[str, Any]) -> AttributionOptions:
    return option_table(tables, "attribution", AttributionOptions)


class AttributionBaseline:
    tables: Mapping[str, type[Any]] = {"attribution": AttributionOptions}
    alone = False

    def wanted(self, tables: Mapping[str, Any]) -> bool:
        return attribution_options(tables).enabled

    def validate(self, columns: ColumnsConfig, tables: Mapping[str, Any]) -> None:
        if self.wanted(tables) and not attribution_options(tables).model_url:
            raise ConfigError("--attribution needs --model-url")

    def build(self, job: Job) -> int:
        return run_attribution(job)


def run_attribution(job: Job) -> int:
    """The attribution baseline: Kernel SHAP of a training sample against the model."""
    a, q = attribution_options(job.tables), quality_options(job.tables)
    table = dataset_table(job)
    roles = {job.columns.label, job.columns.prediction, q.probability}
    names = list(a.features) if a.features else [n for n in table.column_names if n not in roles]
    x = np.column_stack([np.asarray(column(table, n), dtype=np.float64) for n in names])
    background = summarize(x[np.isfinite(x).all(axis=1)], a.background_k, seed=0)
    explained = sample_rows(x, a.explain_rows, seed=0)
    explainer = KernelExplainer(background, nsamples=a.nsamples, seed=0)
    client = a.client(rows_per_request=500, requests_per_second=50.0)

    async def explain() -> Any:
        async with ModelClient(client) as c:
            return await explain_async(explainer, explained, c.predict)

    explanation = asyncio.run(explain())
    labels = output_names(explanation.shap_values.shape[2], a.output_labels)
    doc = report(explanation, names, labels=labels)
    back = {
        "features": names,
        "rows": background.rows.tolist(),
        "weights": background.weights.tolist(),
        "nsamples": a.nsamples,
    }
    docs = {"analysis.json": dumps(doc), "background.json": dumps(back)}
    written = write_documents(job.output, docs, store_config=job.store)
    if not job.quiet:
        print("\n".join(f"wrote {n}" for n in written), file=sys.stderr)
    return 0


ATTRIBUTION_BASELINE = AttributionBaseline()
