"""Read each row's prediction (and score) from a window's capture records: the first half of
the ground-truth merge (:mod:`.merge`), and what label-free estimation reads.

**Reading predictions** from ``endpointOutput`` (see :class:`PredictionSpec`): CSV output is read
by column index, all records of a window in one Arrow parse; JSON output by a small path
(:func:`compile_path`), evaluated on each record's whole output document by
:mod:`analyzer.capture_payload`, which also reads the payload's format for the window reader.

**Ids.** A record's id is ``eventMetadata.inferenceId`` when present, else ``eventId`` (SageMaker's
rule); a ground-truth line's ``eventId`` carries either.

**Outputs.** ``y_true`` and ``y_pred`` are float64 when every label and prediction is a number
(so ``1`` equals ``1.0``), else text with numbers written canonically (``"1.0"`` becomes ``"1"``).
Without a label attribute, a probability becomes the label ``1.0`` when it is at least
``probability_threshold``, else ``0.0``. ``y_score`` holds the probabilities when configured.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from analyzer.capture_payload import OUTPUT, PayloadError, default_rows, read_side, rows_at
from analyzer.groundtruth.records import label_text
from modeltap.core.jsonpath import Step, compile_path

# --- The spec and the counts --------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionSpec:
    """How to read each row's prediction from ``endpointOutput``.

    CSV output: ``inference_index`` / ``probability_index`` are 0-based columns. JSON output:
    ``inference_attribute`` / ``probability_attribute`` are paths (:func:`compile_path`) on the
    whole output document, e.g. ``predictions[*].label``, ``probabilities[1]``,
    ``outputs[?name=='predict_proba'].data[*][1]``. With neither a label nor a probability set,
    the label is CSV column 0, or the JSON ``predictions`` / ``outputs[0].data`` / whole document.
    Without a label but with a probability, the label is ``probability >= probability_threshold``.
    """

    inference_index: int | None = None
    probability_index: int | None = None
    inference_attribute: str | None = None
    probability_attribute: str | None = None
    probability_threshold: float = 0.5
    _label_path: tuple[Step, ...] | None = field(default=None, init=False, repr=False)
    _score_path: tuple[Step, ...] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("inference_index", "probability_index"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a column index >= 0, got {value!r}")
        if not math.isfinite(self.probability_threshold):
            raise ValueError(
                f"probability_threshold must be finite, got {self.probability_threshold}"
            )
        if self.inference_attribute is not None:
            object.__setattr__(self, "_label_path", compile_path(self.inference_attribute))
        if self.probability_attribute is not None:
            object.__setattr__(self, "_score_path", compile_path(self.probability_attribute))

    @property
    def csv_label_index(self) -> int | None:
        if self.inference_index is None and self.probability_index is None:
            return 0
        return self.inference_index


@dataclass
class MergeStats:
    """Counts of one merge; ``unparsed_predictions`` counts rows, or records when rows are unknown."""

    records: int = 0
    predictions: int = 0
    labelled: int = 0
    predictions_without_label: int = 0
    labels: int = 0
    labels_without_prediction: int = 0
    duplicate_labels: int = 0
    duplicate_prediction_ids: int = 0
    label_row_mismatch: int = 0
    unparsed_predictions: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str, n: int = 1) -> None:
        if n:
            self.unparsed_predictions[reason] = self.unparsed_predictions.get(reason, 0) + n


# --- Reading predictions ----------------------------------------------------------------------


_DERIVE: Any = object()  # a row whose label comes from its probability and the threshold


@dataclass
class _Rows:
    """Per-row columns, grown record by record; ``failure`` is None for a readable row."""

    record: list[int] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    label: list[Any] = field(default_factory=list)
    score: list[Any] = field(default_factory=list)
    failure: list[str | None] = field(default_factory=list)

    def add(self, record: int, labels: Sequence[Any], scores: Sequence[Any]) -> None:
        n = max(len(labels), len(scores))
        self.record.extend([record] * n)
        self.position.extend(range(n))
        self.label.extend(labels if labels else [_DERIVE] * n)
        self.score.extend(scores if scores else [None] * n)
        self.failure.extend([None] * n)


def _record_id(rec: dict[str, Any]) -> str | None:
    meta = rec.get("eventMetadata")
    if not isinstance(meta, dict):
        return None
    for key in ("inferenceId", "eventId"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _json_rows(
    doc: Any, spec: PredictionSpec, stats: MergeStats
) -> tuple[list[Any], list[Any]] | None:
    """(labels, scores) of one JSON output document; None (counted) when unreadable."""
    labels: list[Any] = []
    scores: list[Any] = []
    if spec._score_path is not None:
        found = rows_at(doc, spec._score_path)
        if found is None:
            stats.fail("probability_not_found")
            return None
        scores = found
    if spec._label_path is not None:
        found = rows_at(doc, spec._label_path)
        if found is None:
            stats.fail("label_not_found")
            return None
        labels = found
    elif spec._score_path is None:
        labels = default_rows(doc)
    if labels and scores and len(labels) != len(scores):
        stats.fail("row_count_mismatch")
        return None
    return labels, scores


def _csv_rows(
    parts: list[tuple[int, bytes]], spec: PredictionSpec, rows: _Rows, stats: MergeStats
) -> None:
    """All CSV outputs in one Arrow parse (record by record when the widths disagree).

    Rows are the non-blank lines of a payload (a quoted field holding a newline is not supported).
    """
    lines_per = [_lines(text) for _, text in parts]
    stats.fail("empty", sum(1 for lines in lines_per if not lines))
    label_i, score_i = spec.csv_label_index, spec.probability_index
    wanted = [i for i in (label_i, score_i) if i is not None]
    try:
        columns = _read_csv(b"\n".join(ln for lines in lines_per for ln in lines), max(wanted) + 1)
    except (pa.ArrowInvalid, IndexError):
        columns = None
    if columns is not None and any(
        len(col) != sum(map(len, lines_per)) for col in columns
    ):  # a quoted field spanning lines: Arrow's rows are not the lines; go record by record
        columns = None
    if columns is not None:  # one parse, no nulls: the row bookkeeping is numpy
        counts = np.fromiter((len(lines) for lines in lines_per), np.int64, len(parts))
        total = int(counts.sum())
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        rows.record.extend(np.repeat([r for r, _ in parts], counts).tolist())
        rows.position.extend((np.arange(total) - starts).tolist())
        rows.label.extend(columns[label_i] if label_i is not None else [_DERIVE] * total)
        rows.score.extend(columns[score_i] if score_i is not None else [None] * total)
        rows.failure.extend([None] * total)
        return
    for (record, _), lines in zip(parts, lines_per, strict=True):
        parsed = _read_lines(lines)
        if parsed is None:
            stats.fail("bad_csv")
            continue
        cols = {i: [r[i] if i < len(r) else None for r in parsed] for i in wanted}
        start = len(rows.failure)
        rows.add(record, cols[label_i] if label_i is not None else [],
                 cols[score_i] if score_i is not None else [])  # fmt: skip
        for values in cols.values():
            for k, v in enumerate(values):
                if v is None:
                    rows.failure[start + k] = "missing_column"


def _lines(text: bytes) -> list[bytes]:
    lines = text.splitlines()
    if len(lines) == 1 and lines[0].strip():
        return lines
    return [ln for ln in lines if ln.strip()]


def _read_csv(data: bytes, width: int) -> list[list[Any]] | None:
    """Columns ``0..width-1`` as lists; raises ArrowInvalid on a ragged or narrow batch."""
    if not data:
        return [[] for _ in range(width)]
    first = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", "replace")]))
    if len(first) < width:
        raise IndexError(width)
    names = [f"c{i}" for i in range(len(first))]
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )
    return [table.column(i).to_pylist() for i in range(width)]


def _read_lines(lines: list[bytes]) -> list[list[str]] | None:
    try:
        return list(csv.reader(ln.decode("utf-8") for ln in lines))
    except (UnicodeDecodeError, csv.Error):
        return None


def _read_predictions(
    records: Sequence[dict[str, Any]], spec: PredictionSpec, stats: MergeStats
) -> tuple[list[str | None], _Rows]:
    """Record ids (None when missing) and the per-row raw values of every readable output."""
    ids: list[str | None] = []
    rows = _Rows()
    csv_parts: list[tuple[int, bytes]] = []
    for i, rec in enumerate(records):
        rid = _record_id(rec) if isinstance(rec, dict) else None
        ids.append(rid)
        if rid is None:
            stats.fail("missing_id")
            continue
        try:
            found = read_side(rec, OUTPUT)
        except PayloadError as exc:
            stats.fail(exc.reason)
            continue
        if found is None:
            stats.fail("missing_output")
            continue
        kind, raw = found
        if kind == "csv":
            csv_parts.append((i, raw))
        else:
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                stats.fail("bad_json")
                continue
            read = _json_rows(doc, spec, stats)
            if read is not None:
                if not read[0] and not read[1]:
                    stats.fail("empty")
                rows.add(i, *read)
    if csv_parts:
        _csv_rows(csv_parts, spec, rows, stats)
    return ids, rows


def _scores(raw: list[Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Probabilities as float64 and a mask of the finite ones (text or JSON numbers)."""
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([_float(v) for v in raw], dtype=np.float64)
    return values, np.isfinite(values)


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        return math.nan
    try:
        return float(v)
    except ValueError:
        return math.nan


def _canonical(text: str) -> str:
    """Numbers written one way (``"1.0"``, ``"1"`` and ``"1e0"`` are ``"1"``); other text as is."""
    try:
        f = float(text)
    except ValueError:
        return text
    if not math.isfinite(f):
        return text
    return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)


def typed(
    true: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Labels and predictions both float64 when all are numbers, else canonical text (object
    arrays): how the merge types them, and how a batch dataset's columns are typed alike."""
    try:
        return np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    except (TypeError, ValueError):
        pass

    def text(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        out = np.empty(len(a), dtype=object)
        out[:] = [_canonical(v if isinstance(v, str) else repr(float(v))) for v in a]
        return out

    return text(true), text(pred)


def objects(values: Sequence[Any]) -> np.ndarray[Any, Any]:
    """A 1-D object array (``np.asarray`` would nest lists and is 2-D for ``[[]]``)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def split_labels(text: str, n: int) -> list[str] | None:
    """``n`` labels from one CSV line or ``n`` lines; None for another count."""
    try:
        parsed = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        return None
    parsed = [r for r in parsed if r]
    if len(parsed) == 1 and len(parsed[0]) == n:
        return [f.strip() for f in parsed[0]]
    if len(parsed) == n and all(len(r) == 1 for r in parsed):
        return [r[0].strip() for r in parsed]
    return None


# --- Every row's prediction -------------------------------------------------------------------


@dataclass
class Predictions:
    ids: list[str | None]
    record: np.ndarray[Any, Any]
    position: np.ndarray[Any, Any]
    pred: np.ndarray[Any, Any]
    score: np.ndarray[Any, Any] | None
    valid: np.ndarray[Any, Any]


def predictions(
    records: Sequence[dict[str, Any]], spec: PredictionSpec, stats: MergeStats
) -> Predictions:
    """Every row's prediction (and score) of ``records``; unreadable rows counted by reason."""
    ids, rows = _read_predictions(records, spec, stats)
    n = len(rows.record)
    record = np.asarray(rows.record, dtype=np.int64)
    position = np.asarray(rows.position, dtype=np.int64)
    failure = objects(rows.failure)

    score: np.ndarray[Any, Any] | None = None
    if spec.probability_index is not None or spec._score_path is not None:
        score, finite = _scores(rows.score)
        missing = np.asarray([v is None for v in rows.score], dtype=bool)
        failure[(failure == None) & missing] = "missing_probability"  # noqa: E711 (elementwise)
        failure[(failure == None) & ~finite] = "bad_probability"  # noqa: E711
    pred = np.empty(n, dtype=object)
    for k, v in enumerate(rows.label):
        if v is _DERIVE:
            if score is not None and failure[k] is None:
                pred[k] = 1.0 if score[k] >= spec.probability_threshold else 0.0
            elif failure[k] is None:
                failure[k] = "missing_probability"
            continue
        text = None if v is None or isinstance(v, list | dict) else label_text(v)
        if failure[k] is None and not text:
            failure[k] = "not_scalar" if isinstance(v, list | dict) else "null_prediction"
        pred[k] = text
    valid = failure == None  # noqa: E711
    reasons, counts = np.unique(failure[~valid].astype(str), return_counts=True)
    for reason, count in zip(reasons.tolist(), counts.tolist(), strict=True):
        stats.fail(reason, count)
    stats.predictions = int(valid.sum())
    return Predictions(ids, record, position, pred, score, valid)


def read_predictions(
    records: Sequence[dict[str, Any]], spec: PredictionSpec
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None, MergeStats]:
    """Every readable row's (prediction, score) without labels: what estimation works from."""
    stats = MergeStats(records=len(records))
    p = predictions(records, spec, stats)
    score = p.score[p.valid] if p.score is not None else None
    _, y_pred = typed(p.pred[p.valid], p.pred[p.valid])
    return y_pred, score, stats
