"""One feature-attribution-drift run: Kernel SHAP of a sample of the window against the model.

A seeded sample of the window's input rows is explained against the baseline's background rows
by scoring synthetic rows on the model server (batched, with bounded concurrency and rate, so
production traffic is not hurt); the global attributions are ranked against the baseline's and
an NDCG below the threshold is a ``feature_attribution_drift_check`` violation. A model with
several outputs (``analyzer.attribution.outputs``) gets one explanation and one NDCG per output.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from analyzer.attribution.client import ModelClient, ModelClientConfig
from analyzer.attribution.kernel_shap import Background, KernelExplainer, explain_async
from analyzer.attribution.ndcg import DEFAULT_THRESHOLD, compare, report
from analyzer.attribution.outputs import baseline_labels, check_same_outputs, output_names
from analyzer.batch_rows import floats, read_rows
from analyzer.targets import BatchDataset
from analyzer.window import Window, window_records
from analyzer.window_rows import aligned_rows
from modeltap.core.store.base import Store


@dataclass(frozen=True)
class AttributionTarget:
    """An endpoint's attribution settings and its baseline (analysis.json + background.json)."""

    baseline: dict[str, Any]  # the baseline's attributions report
    features: tuple[str, ...]
    background: Background
    client: ModelClientConfig
    rows: int = 50  # window rows explained per run
    nsamples: int | None = None  # coalitions per row (None: all when 2^m is small)
    threshold: float = DEFAULT_THRESHOLD
    labels: tuple[str, ...] = ()  # names of the explained outputs (default: the baseline's)


@dataclass
class AttributionResult:
    """One window's attribution drift (a failed run holds only ``error``)."""

    rows_explained: int = 0
    report: dict[str, Any] | None = None  # Clarify's analysis.json of the window (explanations)
    ndcg: dict[str, float] = field(default_factory=dict)  # per explained output label
    violations: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""  # why the run failed ('' when it did not)

    def document(self) -> dict[str, Any]:
        """The result as attribution/run.json (without the report) and report.html show it."""
        if self.error:
            return {"error": self.error, "violations": self.violations}
        return {
            "rows_explained": self.rows_explained,
            "report": self.report,
            "ndcg": self.ndcg,
            "violations": self.violations,
        }


def sample_rows(x: np.ndarray[Any, Any], n: int, seed: int) -> np.ndarray[Any, Any]:
    """Up to ``n`` finite rows of ``x``, drawn without replacement (seeded by the window)."""
    finite: np.ndarray[Any, Any] = x[np.isfinite(x).all(axis=1)]
    if len(finite) > n:
        rng = np.random.default_rng(seed)
        finite = finite[np.sort(rng.choice(len(finite), n, replace=False))]
    return finite


def _rows_to_explain(
    records: list[dict[str, Any]], target: AttributionTarget, seed: int
) -> np.ndarray[Any, Any]:
    """The window's sampled input rows as floats (parsed on a worker thread)."""
    inputs = aligned_rows(records, list(target.features)).inputs
    if inputs.num_rows == 0:
        return np.zeros((0, len(target.features)))
    x = np.column_stack(
        [
            np.asarray(inputs.column(f).to_numpy(zero_copy_only=False), dtype=np.float64)
            for f in target.features
        ]
    )
    return sample_rows(x, target.rows, seed)


def _dataset_rows_to_explain(
    table: pa.Table, target: AttributionTarget, seed: int
) -> np.ndarray[Any, Any]:
    """A batch dataset's sampled rows as floats (text and missing values are not finite)."""
    if table.num_rows == 0:
        return np.zeros((0, len(target.features)))
    x = np.column_stack([floats(table.column(f)) for f in target.features])
    return sample_rows(x, target.rows, seed)


async def run_attribution(
    captures: Store,
    endpoint: str,
    variant: str,
    target_model: str,
    target: AttributionTarget,
    window: Window,
    batch: BatchDataset | None = None,
) -> AttributionResult:
    """The attribution of one run: the window's report, NDCG per label, violations.

    ``batch``: ``captures`` is that batch dataset's store, whose rows are explained."""
    seed = int(window.start.timestamp())
    if batch is not None:
        read = await read_rows(captures, batch, window, target.features)
        x = await asyncio.to_thread(_dataset_rows_to_explain, read.table, target, seed)
    else:
        records, _ = await window_records(captures, endpoint, variant, window, target_model)
        x = await asyncio.to_thread(_rows_to_explain, records, target, seed)
    return await explain_rows(target, x)


async def explain_rows(target: AttributionTarget, x: np.ndarray[Any, Any]) -> AttributionResult:
    """Kernel SHAP of rows ``x`` against the model, compared with the baseline."""
    if not len(x):
        return AttributionResult()
    explainer = KernelExplainer(target.background, nsamples=target.nsamples, seed=0)
    async with ModelClient(target.client) as client:
        explanation = await explain_async(explainer, x, client.predict)
    known = baseline_labels(target.baseline)
    names = output_names(explanation.shap_values.shape[2], target.labels, known)
    check_same_outputs(known, names)
    current = report(explanation, list(target.features), labels=names)
    scores, violations = compare(target.baseline, current, threshold=target.threshold)
    return AttributionResult(len(x), current, scores, violations)
