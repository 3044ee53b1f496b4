"""One bias-drift run: Clarify's post-training bias metrics of a window against the baseline's.

Metrics of predicted labels alone (DPPL, DI, CDDPL, FT) cover every readable prediction of the
window; those that need the truth (AD, DAR, DCA, DCR, DRR, RD, SD, TE) cover the predictions that
have a ground-truth label, joined as model quality joins them. The window's bootstrap interval is
compared with the baseline's allowed range, so sampling noise alone does not raise a violation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.batch_rows import predictions, read_rows, role_columns
from analyzer.bias import Facet, check, compute
from analyzer.bias.metrics import METRIC_NAMES, NEEDS_LABELS
from analyzer.groundtruth import Labels, PredictionSpec, load_labels, merge
from analyzer.quality.label_types import InvalidLabels, wrong_type
from analyzer.quality.labels import ProblemType
from analyzer.targets import BatchDataset
from analyzer.window import Window, window_records
from analyzer.window_rows import aligned_rows
from modeltap.core.store.base import Store


@dataclass(frozen=True)
class BiasTarget:
    """An endpoint's bias settings and its bias baseline (analysis.json + constraints.json)."""

    facets: tuple[Facet, ...]
    baseline: dict[str, Any]
    constraints: dict[str, Any]
    spec: PredictionSpec
    columns: tuple[str, ...]  # the endpoint's input columns, in order (the data baseline's)
    positive_values: tuple[str, ...] = ("1",)
    group: str | None = None
    bootstrap: int = 200
    ground_truth: str = ""  # the labels' prefix ([ground_truth] destination; '' for none)


@dataclass
class BiasResult:
    """One window's bias drift (a failed run holds only ``error``)."""

    rows: int = 0  # predictions read from the window
    labelled: int = 0  # ... of which have a ground-truth label
    unreadable_predictions: dict[str, int] = field(default_factory=dict)  # by reason
    mismatched_records: int = 0  # records whose input and output row counts differ
    invalid_labels: InvalidLabels = field(default_factory=InvalidLabels)  # left out; run fails
    report: dict[str, Any] | None = None  # Clarify's analysis.json of the window
    violations: list[dict[str, Any]] = field(default_factory=list)
    captures_read: dict[str, int] = field(default_factory=dict)  # ReadStats.counts()
    error: str = ""  # why the run failed ('' when it did not)

    def document(self) -> dict[str, Any]:
        """The result as bias/run.json (without the report) and report.html show it."""
        if self.error:
            return {"error": self.error, "violations": self.violations}
        return {
            "rows": self.rows,
            "labelled": self.labelled,
            "unreadable_predictions": self.unreadable_predictions,
            "mismatched_records": self.mismatched_records,
            "invalid_labels": asdict(self.invalid_labels),
            "report": self.report,
            "violations": self.violations,
            "captures_read": self.captures_read,
        }


def _matrix(table: pa.Table, names: list[str]) -> np.ndarray[Any, Any] | None:
    """Numeric feature columns as floats for the flip test; None when some are not numeric."""
    try:
        cols = [np.asarray(table.column(n).to_numpy(zero_copy_only=False), dtype=np.float64)
                for n in names]  # fmt: skip
    except (TypeError, ValueError):
        return None
    return np.column_stack(cols) if cols else None


def merge_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One report from two over the same facets (metrics lists joined, Clarify's order)."""
    out = {**a, "post_training_bias_metrics": dict(a["post_training_bias_metrics"])}
    facets_a = a["post_training_bias_metrics"]["facets"]
    facets_b = b["post_training_bias_metrics"]["facets"]
    joined: dict[str, list[dict[str, Any]]] = {}
    for name, entries in facets_a.items():
        others = {e["value_or_threshold"]: e for e in facets_b.get(name, [])}
        joined[name] = []
        for e in entries:
            extra = others.get(e["value_or_threshold"], {}).get("metrics", [])
            metrics = sorted([*e["metrics"], *extra], key=lambda m: METRIC_NAMES.index(m["name"]))
            joined[name].append({**e, "metrics": metrics})
    out["post_training_bias_metrics"]["facets"] = joined
    return out


async def run_bias(
    captures: Store,
    labels_store: Store | None,
    endpoint: str,
    variant: str,
    target_model: str,
    target: BiasTarget,
    window: Window,
) -> BiasResult:
    """The bias of one run: the report, its violations and what it covered."""
    records, read = await window_records(captures, endpoint, variant, window, target_model)
    labels = None
    if labels_store is not None:
        labels, _ = await load_labels(
            labels_store, endpoint, variant, window, label_delay=dt.timedelta(days=36500),
            now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    result = await asyncio.to_thread(_evaluate, target, records, labels)
    result.captures_read = read.counts()
    return result


def _evaluate(
    target: BiasTarget, records: list[dict[str, Any]], labels: Labels | None
) -> BiasResult:
    """The parsing, joins and bootstrap of a run (a worker thread: none of it on the loop)."""
    rows = aligned_rows(records, list(target.columns), target.spec)
    result = BiasResult(
        rows=len(rows.keys),
        unreadable_predictions=rows.merge.unparsed_predictions,
        mismatched_records=rows.mismatched_records,
    )
    if not len(rows.keys) or rows.y_pred is None:
        return result
    labelled: np.ndarray[Any, Any] | None = None
    y_true = None
    if labels is not None and len(labels):
        joined = merge(records, labels, target.spec)
        keys = pa.array(rows.keys.tolist(), pa.string())
        at = pc.index_in(keys, value_set=pa.array(joined.ids.tolist(), pa.string()))
        at = at.fill_null(-1).to_numpy()
        labelled = at >= 0
        y_true = joined.y_true[at[labelled]]
    _report(target, result, rows.inputs, rows.y_pred, labelled, y_true)
    return result


async def run_bias_dataset(
    dataset_store: Store,
    labels_store: Store | None,
    endpoint: str,
    variant: str,
    batch: BatchDataset,
    target: BiasTarget,
    window: Window,
) -> BiasResult:
    """The bias of one run over a batch dataset: facet (and group, feature) columns and the
    prediction columns of its rows; truth from its label column, or ground truth by id."""
    roles = role_columns(batch)
    read = await read_rows(dataset_store, batch, window, [*target.columns, *roles])
    labels = None
    if not batch.label_column and labels_store is not None:
        labels, _ = await load_labels(
            labels_store, endpoint, variant, window, label_delay=dt.timedelta(days=36500),
            now=dt.datetime.now(dt.UTC),
        )  # fmt: skip

    def evaluate() -> BiasResult:
        rows = predictions(read.table, batch, target.spec.probability_threshold, labels)
        result = BiasResult(
            rows=len(rows.rows), unreadable_predictions=rows.stats.unparsed_predictions
        )
        if len(rows.rows):
            inputs = read.table.take(pa.array(rows.rows))
            labelled = rows.labelled if rows.labelled.any() else None
            _report(target, result, inputs, rows.y_pred, labelled, rows.y_true, skip=roles)
        return result

    result = await asyncio.to_thread(evaluate)
    result.captures_read = read.read.counts()
    return result


def _report(
    target: BiasTarget,
    result: BiasResult,
    inputs: pa.Table,
    y_pred: np.ndarray[Any, Any],
    labelled: np.ndarray[Any, Any] | None,
    y_true: np.ndarray[Any, Any] | None,
    skip: Sequence[str] = (),
) -> None:
    """The report of rows (``inputs`` beside their predictions; ``y_true`` of the ``labelled``
    ones) and its violations, into ``result``. ``skip``: columns that are not features."""
    facet_names = [f.name for f in target.facets]
    facet_columns = {n: inputs.column(n).to_numpy(zero_copy_only=False) for n in facet_names}
    group = inputs.column(target.group).to_numpy(zero_copy_only=False) if target.group else None
    not_features = {*facet_names, *([target.group] if target.group else []), *skip}
    features = _matrix(inputs, [c for c in target.columns if c not in not_features])
    common: dict[str, Any] = {
        "positive_values": target.positive_values,
        "probability_threshold": target.spec.probability_threshold,
        "bootstrap": target.bootstrap,
    }
    report = compute(
        facet_columns,
        target.facets,
        y_pred=y_pred,
        group=group,
        features=features,
        metrics=[m for m in METRIC_NAMES if m not in NEEDS_LABELS],
        **common,
    )
    if labelled is not None and y_true is not None and labelled.any():
        labelled, y_true = _valid_labels(target, result, labelled, y_true, y_pred)
    if labelled is not None and y_true is not None and labelled.any():
        result.labelled = int(labelled.sum())
        with_truth = compute(
            {n: c[labelled] for n, c in facet_columns.items()},
            target.facets,
            y_pred=y_pred[labelled],
            y_true=y_true,
            metrics=sorted(NEEDS_LABELS),
            **common,
        )
        report = merge_reports(report, with_truth)
    result.report = report
    result.violations = check(report, target.constraints)


def _valid_labels(
    target: BiasTarget,
    result: BiasResult,
    labelled: np.ndarray[Any, Any],
    y_true: np.ndarray[Any, Any],
    y_pred: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``labelled`` and ``y_true`` without the labels that cannot be the model's (a text label
    beside numeric predictions, a third class of a binary model: model quality's rule), which
    would otherwise count as negatives; counted in ``result.invalid_labels``."""
    positive = target.positive_values[0] if len(target.positive_values) == 1 else None
    bad, expected = wrong_type(ProblemType.BINARY, y_true, y_pred[labelled], {}, positive)
    result.invalid_labels = InvalidLabels.found(y_true, bad, expected)
    if not bad.any():
        return labelled, y_true
    kept = labelled.copy()
    kept[np.flatnonzero(labelled)[bad]] = False
    return kept, y_true[~bad]
