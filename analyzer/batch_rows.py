"""A batch dataset's rows of one window, for the sections that read rows (quality, bias,
attribution), as ``analyzer.window_rows`` gives them a window's captured rows.

A batch job's table holds every column by name: its inputs, and the columns the
``[[endpoints]]`` table names for the predicted label, its probability and the ground truth (or
a row id to join ground truth with, as captured predictions are joined). Objects are those the
data-quality run reads (``analyzer.dataset_objects``); one that cannot be read is skipped and
counted, as there. Columns are read as the reader gives them: CSV as text, as captured CSV
payloads are, so a CSV dataset and the captures of the same rows give the same values.

Predictions and labels become the arrays the merge of captured predictions gives
(``analyzer.groundtruth.predictions``): both float64 when every value is a number, else canonical text;
a prediction derived from a probability is ``1.0`` at or above the threshold, else ``0.0``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.dataset_objects import list_dataset
from analyzer.errors import DataError
from analyzer.groundtruth import Labels, MergeStats
from analyzer.groundtruth.predictions import typed
from analyzer.readers import ReadOptions, read_chunks
from analyzer.targets import BatchDataset
from analyzer.window import ReadStats, Window
from modeltap.core.store.base import Store

log = logging.getLogger(__name__)
Array = npt.NDArray[Any]


@dataclass
class DatasetRows:
    """The wanted columns of the window's rows (a column no file has is all null)."""

    table: pa.Table
    read: ReadStats = field(default_factory=ReadStats)


def _read_object(
    key: str, data: bytes, options: ReadOptions, columns: Sequence[str]
) -> tuple[pa.Table | None, ReadStats]:
    """The ``columns`` of one object (a worker thread); None, counted, when it cannot be read."""
    read = ReadStats(objects=1)
    parts = []
    try:
        for chunk in read_chunks(data, key, options, columns=columns):
            batch = chunk.batch
            n = batch.num_rows
            names = batch.schema.names
            arrays = [batch.column(c) if c in names else pa.nulls(n) for c in columns]
            parts.append(pa.table(arrays, names=list(columns)))
    except DataError as exc:
        log.warning("skipping dataset object %s: %s", key, exc)
        read.bad_objects, read.bad_keys = 1, [key]
        return None, read
    table = _concat(parts) if parts else None
    read.records = table.num_rows if table is not None else 0
    return table, read


async def read_rows(
    store: Store, dataset: BatchDataset, window: Window, columns: Sequence[str]
) -> DatasetRows:
    """The ``columns`` of every row of the window's dataset objects, in key order."""
    options = ReadOptions(format=dataset.format, header=dataset.header)
    wanted = list(dict.fromkeys(columns))
    out = DatasetRows(pa.table({c: pa.array([], pa.null()) for c in wanted}))
    parts = []
    for info in await list_dataset(store, dataset, window):
        data = await store.get(info.key)
        table, read = await asyncio.to_thread(_read_object, info.key, data, options, wanted)
        out.read.merge(read)
        if table is not None:
            parts.append(table)
    if parts:
        out.table = _concat(parts)
    return out


def _concat(parts: list[pa.Table]) -> pa.Table:
    """One table; a column typed differently by two files (CSV text, Parquet numbers) as text."""
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    mixed = []
    for n in parts[0].column_names:
        types = {p.schema.field(n).type for p in parts} - {pa.null()}
        if len(types) > 1:
            mixed.append(n)
    as_text = []
    for part in parts:
        for n in mixed:
            i = part.column_names.index(n)
            part = part.set_column(i, n, pc.cast(part.column(n), pa.string()))
        as_text.append(part)
    return pa.concat_tables(as_text, promote_options="permissive")


def column(table: pa.Table, name: str) -> Array:
    """A column as a numpy array (object for text and nulls)."""
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False))


def _objects(values: Any) -> Array:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def floats(values: pa.ChunkedArray) -> Array:
    """Numbers as float64; missing and non-numeric values NaN."""
    if pa.types.is_null(values.type):
        return np.full(len(values), np.nan)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        numeric = pc.match_substring_regex(values, _NUMBER)
        values = pc.if_else(numeric, values, pa.scalar(None, values.type))
    cast = pc.cast(values, pa.float64(), safe=False).fill_null(np.nan)
    return np.asarray(cast.to_numpy(zero_copy_only=False), dtype=np.float64)


def _present(values: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """Not null, NaN or blank text."""
    ok = pc.is_valid(values)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        ok = pc.and_(ok, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0))
    elif pa.types.is_floating(values.type):
        ok = pc.and_(ok, pc.invert(pc.is_nan(values)))
    return np.asarray(ok.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass
class RowPredictions:
    """The readable predictions of a window's rows and, where known, their ground truth."""

    rows: npt.NDArray[np.int64]  # the table rows with a readable prediction
    y_pred: Array  # typed (see the module docstring), one per row of ``rows``
    y_score: Array | None  # probabilities, when the dataset has a probability column
    labelled: npt.NDArray[np.bool_]  # which of ``rows`` have ground truth ...
    y_true: Array  # ... and it, typed alike with their predictions
    y_pred_labelled: Array
    stats: MergeStats = field(default_factory=MergeStats)


def role_columns(dataset: BatchDataset) -> list[str]:
    """The role columns the dataset names (label, prediction, probability, id)."""
    roles = (dataset.label_column, dataset.prediction_column, dataset.probability_column,
             dataset.id_column)  # fmt: skip
    return [c for c in roles if c]


def predictions(
    table: pa.Table, dataset: BatchDataset, threshold: float, labels: Labels | None
) -> RowPredictions:
    """Each row's prediction (the prediction column, else probability >= ``threshold``) and its
    ground truth (the label column, else the label whose id is the row's ``id_column``)."""
    n = table.num_rows
    stats = MergeStats(records=n)
    prob = dataset.probability_column
    score = floats(table.column(prob)) if prob else None
    if dataset.prediction_column:
        pred = _objects(column(table, dataset.prediction_column))
        valid = _present(table.column(dataset.prediction_column))
        stats.fail("null_prediction", int((~valid).sum()))
    elif score is not None:
        valid = np.isfinite(score)
        pred = _objects(np.where(score >= threshold, 1.0, 0.0))
        stats.fail("missing_probability", int((~valid).sum()))
    else:
        raise DataError("the dataset names neither prediction_column nor probability_column")
    rows = np.flatnonzero(valid)
    stats.predictions = len(rows)
    truth = np.empty(len(rows), dtype=object)
    labelled = np.zeros(len(rows), dtype=bool)
    if dataset.label_column:
        present = _present(table.column(dataset.label_column))
        truth[:] = _objects(column(table, dataset.label_column))[rows]
        labelled = present[rows]
        stats.labels = int(present.sum())  # the labels read: every row that holds one
        stats.labels_without_prediction = int((present & ~valid).sum())
    elif dataset.id_column and labels is not None and len(labels):
        latest, stats.duplicate_labels = labels.latest()
        stats.labels = len(latest)
        ids = pc.cast(table.column(dataset.id_column), pa.string())
        at = pc.index_in(ids, value_set=latest.event_id).fill_null(-1).to_numpy()[rows]
        labelled = at >= 0
        truth[labelled] = _objects(latest.label.to_pylist())[at[labelled]]
        known = pc.is_in(latest.event_id, value_set=ids)
        stats.labels_without_prediction = len(latest) - int(pc.sum(known).as_py() or 0)
    stats.labelled = int(labelled.sum())
    stats.predictions_without_label = stats.predictions - stats.labelled
    _, y_pred = typed(pred[rows], pred[rows])
    y_true, y_pred_labelled = typed(truth[labelled], pred[rows][labelled])
    return RowPredictions(
        rows=rows.astype(np.int64),
        y_pred=y_pred,
        y_score=score[rows] if score is not None else None,
        labelled=labelled,
        y_true=y_true,
        y_pred_labelled=y_pred_labelled,
        stats=stats,
    )
