"""One model-quality run: a window's captured predictions joined with their ground truth.

Labels arrive late, so realised metrics cover the predictions of the window shifted back by the
endpoint's ``label_delay`` (``[start - delay, end - delay)``), joined with every label collected
from then until now. Runs overlap whenever the interval is shorter than the window, so a label
that arrives after one run is picked up by the next that still covers its prediction. Beside the
realised metrics, a binary classifier with probabilities gets an estimate over the current,
unlabelled window (confidence-based, calibrated on the baseline), so a drop shows the day it
happens instead of when labels land.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from analyzer.batch_rows import predictions, read_rows, role_columns
from analyzer.groundtruth import Labels, LabelStats, MergeResult, PredictionSpec, load_labels, merge
from analyzer.groundtruth.predictions import MergeStats, read_predictions
from analyzer.quality import Calibration, ProblemType, QualityError, check, compute, estimate
from analyzer.quality.label_types import InvalidLabels, wrong_type
from analyzer.targets import BatchDataset
from analyzer.window import ReadStats, Window, list_window, parse_records, parse_time
from modeltap.core.store.base import Store

SLIM_KEYS = ("eventMetadata", "modeltap")  # what the merge reads besides endpointOutput


@dataclass(frozen=True)
class QualityTarget:
    """An endpoint's model-quality settings and its model-quality baseline."""

    problem_type: ProblemType
    statistics: dict[str, Any]  # the baseline's statistics.json (metrics, calibration map)
    constraints: dict[str, Any]  # the baseline's constraints.json (thresholds)
    spec: PredictionSpec
    ground_truth: str  # the ground-truth prefix (s3:// or file://)
    label_delay: dt.timedelta = dt.timedelta(0)
    positive_label: str | None = None
    calibration: Calibration | None = field(default=None, repr=False)


@dataclass
class QualityWindows:
    realised: Window  # predictions joined with labels
    estimated: Window  # predictions estimated without labels (the run's own window)

    @classmethod
    def of(cls, window: Window, delay: dt.timedelta) -> QualityWindows:
        return cls(Window(window.start - delay, window.end - delay), window)


@dataclass
class QualityResult:
    """One run's model quality (a run that raised holds only ``error``). ``statistics`` and
    ``estimated`` are SageMaker's model-quality statistics.json layout, a file format."""

    problem_type: str = ""
    realised_window: Window | None = None  # the label-delayed window whose labels are joined
    estimated_window: Window | None = None  # the current window, estimated without labels
    merge: MergeStats = field(default_factory=MergeStats)
    labels_read: LabelStats = field(default_factory=LabelStats)
    captures_read: ReadStats = field(default_factory=ReadStats)
    label_coverage: float | None = None  # labelled / predictions
    invalid_labels: InvalidLabels = field(default_factory=InvalidLabels)
    statistics: dict[str, Any] | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    estimated: dict[str, Any] | None = None
    error: str = ""  # metrics not computed (or the run raised)
    estimate_error: str = ""
    raised: bool = False  # the run raised: only ``error`` stands

    def document(self) -> dict[str, Any]:
        """model_quality.json (and the section of report.html)."""
        if self.raised:
            return {"error": self.error, "violations": self.violations}
        doc: dict[str, Any] = {
            "problem_type": self.problem_type,
            "realised_window": _span(self.realised_window),
            "estimated_window": _span(self.estimated_window),
            "merge": asdict(self.merge),
            "labels_read": {
                "objects": self.labels_read.objects,
                "lines": self.labels_read.lines,
                "labels": self.labels_read.labels,
                "bad_objects": self.labels_read.bad_objects,
                "bad_lines": self.labels_read.bad_lines,
                "bad_lines_by_reason": dict(self.labels_read.reasons),
            },
            "captures_read": self.captures_read.counts(),
            "label_coverage": self.label_coverage,
            "invalid_labels": asdict(self.invalid_labels),
            "statistics": self.statistics,
            "violations": self.violations,
            "estimated": self.estimated,
        }
        if self.error:
            doc["error"] = self.error
        if self.estimate_error:
            doc["estimate_error"] = self.estimate_error
        return doc


def _span(window: Window | None) -> dict[str, str] | None:
    if window is None:
        return None
    return {"start_time": window.start.isoformat(), "end_time": window.end.isoformat()}


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    """The parts of a capture record the merge reads: inputs can be large and are not needed."""
    out = {k: record[k] for k in SLIM_KEYS if k in record}
    out["captureData"] = {"endpointOutput": (record.get("captureData") or {}).get("endpointOutput")}
    return out


def _read_object(
    key: str, data: bytes, windows: QualityWindows, target_model: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], ReadStats]:
    """(records of the realised window, records of the estimated window) of one object."""
    span = Window(
        min(windows.realised.start, windows.estimated.start),
        max(windows.realised.end, windows.estimated.end),
    )
    records, stats = parse_records(key, data, span)
    realised, current = [], []
    for rec in records:
        if target_model and (rec.get("modeltap") or {}).get("targetModel") != target_model:
            continue
        when = parse_time(rec["eventMetadata"]["inferenceTime"])
        if when is None:
            continue
        slim = _slim(rec)
        if windows.realised.start <= when < windows.realised.end:
            realised.append(slim)
        if windows.estimated.start <= when < windows.estimated.end:
            current.append(slim)
    return realised, current, stats


async def run_quality(
    captures: Store,
    labels_store: Store,
    endpoint: str,
    variant: str,
    target_model: str,
    target: QualityTarget,
    window: Window,
    now: dt.datetime | None = None,
) -> QualityResult:
    """The model quality of one run (statistics, violations, merge counts, estimate)."""
    windows = QualityWindows.of(window, target.label_delay)
    span = Window(windows.realised.start, windows.estimated.end)
    realised: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    read = ReadStats()
    for info in await list_window(captures, endpoint, variant, span):
        data = await captures.get(info.key)
        r, c, stats = await asyncio.to_thread(_read_object, info.key, data, windows, target_model)
        realised.extend(r)
        current.extend(c)
        read.merge(stats)
    labels, label_stats = await load_labels(
        labels_store,
        endpoint,
        variant,
        windows.realised,
        label_delay=dt.timedelta(days=36500),  # every label collected since the window began
        now=now or dt.datetime.now(dt.UTC),
    )
    return await asyncio.to_thread(
        _evaluate, target, windows, realised, current, labels, label_stats, read
    )


def _evaluate(
    target: QualityTarget,
    windows: QualityWindows,
    realised: list[dict[str, Any]],
    current: list[dict[str, Any]],
    labels: Labels,
    label_stats: LabelStats,
    read: ReadStats,
) -> QualityResult:
    merged = merge(realised, labels, target.spec)
    estimate_from = None
    if target.problem_type is ProblemType.BINARY and current:
        y_pred, y_score, _ = read_predictions(current, target.spec)
        estimate_from = (y_pred, y_score)
    return _metrics(target, windows, merged, estimate_from, label_stats, read)


async def run_quality_dataset(
    dataset_store: Store,
    labels_store: Store | None,
    endpoint: str,
    variant: str,
    batch: BatchDataset,
    target: QualityTarget,
    window: Window,
    now: dt.datetime | None = None,
) -> QualityResult:
    """The model quality of one run over a batch dataset: its rows' prediction columns with
    their label column, or with ground truth joined by ``id_column`` as captured predictions."""
    windows = QualityWindows.of(window, target.label_delay)
    columns = role_columns(batch)
    realised = await read_rows(dataset_store, batch, windows.realised, columns)
    current = (
        realised
        if windows.realised == windows.estimated
        else await read_rows(dataset_store, batch, windows.estimated, columns)
    )
    labels, label_stats = None, LabelStats()
    if not batch.label_column and labels_store is not None:
        labels, label_stats = await load_labels(
            labels_store, endpoint, variant, windows.realised,
            label_delay=dt.timedelta(days=36500), now=now or dt.datetime.now(dt.UTC),
        )  # fmt: skip

    def evaluate() -> QualityResult:
        threshold = target.spec.probability_threshold
        rows = predictions(realised.table, batch, threshold, labels)
        merged = MergeResult(
            y_true=rows.y_true,
            y_pred=rows.y_pred_labelled,
            y_score=rows.y_score[rows.labelled] if rows.y_score is not None else None,
            ids=np.zeros(0, dtype=object),
            stats=rows.stats,
        )
        estimate_from = None
        if target.problem_type is ProblemType.BINARY and current.table.num_rows:
            now_rows = predictions(current.table, batch, threshold, None)
            estimate_from = (now_rows.y_pred, now_rows.y_score)
        read = realised.read
        return _metrics(target, windows, merged, estimate_from, label_stats, read)

    return await asyncio.to_thread(evaluate)


def _metrics(
    target: QualityTarget,
    windows: QualityWindows,
    merged: MergeResult,
    estimate_from: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None] | None,
    label_stats: LabelStats,
    read: ReadStats,
) -> QualityResult:
    """The metrics of labelled predictions, and the estimate over the current window's."""
    m = merged.stats
    bad, expected = wrong_type(
        target.problem_type, merged.y_true, merged.y_pred, target.statistics, target.positive_label
    )
    y_true, y_pred, y_score = merged.y_true, merged.y_pred, merged.y_score
    if bad.any():  # left out of the metrics; the job fails the run and names them
        keep = ~bad
        y_true, y_pred = y_true[keep], y_pred[keep]
        y_score = y_score[keep] if y_score is not None else None
    result = QualityResult(
        problem_type=target.problem_type.value,
        realised_window=windows.realised,
        estimated_window=windows.estimated,
        merge=m,
        labels_read=label_stats,
        captures_read=read,
        label_coverage=m.labelled / m.predictions if m.predictions else None,
        invalid_labels=InvalidLabels.found(merged.y_true, bad, expected),
    )
    if len(y_true):
        try:
            stats = compute(
                target.problem_type,
                y_true,
                y_pred,
                y_score if target.problem_type is ProblemType.BINARY else None,
                positive_label=target.positive_label,
            )
        except QualityError as exc:  # e.g. labels of a kind the predictions never have
            result.error = str(exc)
        else:
            result.statistics = stats
            result.violations = check(stats, target.constraints)
    if estimate_from is not None:
        y_pred, y_score = estimate_from
        if y_score is not None and len(y_score):
            scores = np.asarray(y_score, dtype=np.float64)
            try:
                result.estimated = estimate(
                    scores,
                    calibration=target.calibration,
                    threshold=target.spec.probability_threshold,
                    y_pred=y_pred,
                    positive_label=target.positive_label,
                )
            except QualityError as exc:
                result.estimate_error = str(exc)
    return result
