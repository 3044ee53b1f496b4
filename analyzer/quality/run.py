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

from analyzer.groundtruth import Labels, LabelStats, PredictionSpec, load_labels, merge
from analyzer.groundtruth.merge import read_predictions
from analyzer.quality import Calibration, ProblemType, QualityError, check, compute, estimate
from analyzer.quality.label_types import examples, wrong_type
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
) -> dict[str, Any]:
    """The ``model_quality`` document of one run (statistics, violations, merge counts, estimate)."""
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
) -> dict[str, Any]:
    merged = merge(realised, labels, target.spec)
    m = merged.stats
    bad, expected = wrong_type(
        target.problem_type, merged.y_true, merged.y_pred, target.statistics, target.positive_label
    )
    y_true, y_pred, y_score = merged.y_true, merged.y_pred, merged.y_score
    if bad.any():  # left out of the metrics; the job fails the run and names them
        keep = ~bad
        y_true, y_pred = y_true[keep], y_pred[keep]
        y_score = y_score[keep] if y_score is not None else None
    doc: dict[str, Any] = {
        "problem_type": target.problem_type.value,
        "realised_window": {
            "start_time": windows.realised.start.isoformat(),
            "end_time": windows.realised.end.isoformat(),
        },
        "estimated_window": {
            "start_time": windows.estimated.start.isoformat(),
            "end_time": windows.estimated.end.isoformat(),
        },
        "merge": asdict(m),
        "labels_read": {
            "objects": label_stats.objects,
            "lines": label_stats.lines,
            "labels": label_stats.labels,
            "bad_objects": label_stats.bad_objects,
            "bad_lines": label_stats.bad_lines,
            "bad_lines_by_reason": dict(label_stats.reasons),
        },
        "captures_read": {"objects": read.objects, "bad_lines": read.bad_lines},
        "label_coverage": m.labelled / m.predictions if m.predictions else None,
        "invalid_labels": {
            "count": int(bad.sum()),
            "of": len(bad),
            "expected": expected,
            "examples": examples(merged.y_true, bad),
        },
        "statistics": None,
        "violations": [],
        "estimated": None,
    }
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
            doc["error"] = str(exc)
        else:
            doc["statistics"] = stats
            doc["violations"] = check(stats, target.constraints)
    if target.problem_type is ProblemType.BINARY and current:
        y_pred, y_score, _ = read_predictions(current, target.spec)
        if y_score is not None and len(y_score):
            scores = np.asarray(y_score, dtype=np.float64)
            try:
                doc["estimated"] = estimate(
                    scores,
                    calibration=target.calibration,
                    threshold=target.spec.probability_threshold,
                    y_pred=y_pred,
                    positive_label=target.positive_label,
                )
            except QualityError as exc:
                doc["estimate_error"] = str(exc)
    return doc
