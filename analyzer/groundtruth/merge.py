"""Join a window's predictions with their ground-truth labels (SageMaker's merge job).

Predictions are read by :mod:`.predictions`.

**Batched records.** A record whose output has ``n`` rows (CSV lines, JSON instances) yields ``n``
predictions. Row ``i`` (from 0) takes, in this order:

1. the label whose id is ``<id>:<i>`` (labels that arrive row by row, at different times), else
2. the label whose id is ``<id>``: for a one-row record that is the label; for ``n > 1`` rows its
   text must hold ``n`` labels as one CSV line (``"1,0,1"``) or ``n`` lines (a JSON list of
   scalars also works, see :mod:`.records`); another count labels no row and is counted in
   ``label_row_mismatch``.

So SageMaker's one-label-per-record files work unchanged, and a batch can be labelled whole or
row by row. An id that itself ends in ``:<digits>`` is still matched exactly by rule 2.

**Counts.** A label counts as ``labels_without_prediction`` only when its id matches no record of
the window (rule 1 or 2), even one whose prediction could not be read: a label whose prediction
fell outside the window is such a label. The join is hash-based in Arrow (``index_in``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.groundtruth.predictions import (
    MergeStats,
    PredictionSpec,
    objects,
    predictions,
    split_labels,
    typed,
)
from analyzer.groundtruth.records import Labels


@dataclass
class MergeResult:
    """The labelled rows, a record's rows together; ``ids`` are their keys ``<id>:<row>``."""

    y_true: np.ndarray[Any, Any]
    y_pred: np.ndarray[Any, Any]
    y_score: np.ndarray[Any, Any] | None
    ids: np.ndarray[Any, Any]
    stats: MergeStats


def merge(records: Sequence[dict[str, Any]], labels: Labels, spec: PredictionSpec) -> MergeResult:
    """Labelled predictions of ``records`` (a window's capture records) with their counts."""
    stats = MergeStats(records=len(records))
    latest, stats.duplicate_labels = labels.latest()
    stats.labels = len(latest)
    p = predictions(records, spec, stats)
    ids, record, position, pred, score, valid = (
        p.ids, p.record, p.position, p.pred, p.score, p.valid
    )  # fmt: skip
    n = len(record)

    # What a label can match: every record id, and the key <id>:<row> of every row (even unread).
    id_arr = objects([i or "" for i in ids])
    record_ids = pa.array([i for i in ids if i is not None], pa.string())
    stats.duplicate_prediction_ids = len(record_ids) - len(pc.unique(record_ids))
    row_ids = pa.array(id_arr[record].tolist(), pa.string())
    row_keys = pc.binary_join_element_wise(row_ids, pc.cast(pa.array(position), pa.string()), ":")
    known = pc.is_in(latest.event_id, value_set=pa.concat_arrays([record_ids, row_keys]))
    stats.labels_without_prediction = len(latest) - int(pc.sum(known).as_py() or 0)

    # Rule 1: <id>:<row>; rule 2: <id>, whole, or split across a batch's rows.
    by_key = pc.index_in(row_keys, value_set=latest.event_id).fill_null(-1).to_numpy()
    by_id = pc.index_in(row_ids, value_set=latest.event_id).fill_null(-1).to_numpy()
    label_vals = objects(latest.label.to_pylist())
    true = np.empty(n, dtype=object)
    labelled = valid & (by_key >= 0)
    true[labelled] = label_vals[by_key[labelled]]
    rows_in = np.bincount(record, minlength=len(records))
    whole = valid & ~labelled & (by_id >= 0)
    single = whole & (rows_in[record] == 1)
    true[single] = label_vals[by_id[single]]
    labelled |= single
    batch = np.flatnonzero(whole & ~single)
    # A record's rows are contiguous: one group per batched record, not one pass per record.
    for members in np.split(batch, np.flatnonzero(np.diff(record[batch])) + 1):
        if not len(members):
            continue
        split = split_labels(str(label_vals[by_id[members[0]]]), int(rows_in[record[members[0]]]))
        if split is None:
            stats.label_row_mismatch += len(members)
            continue
        true[members] = [split[p] for p in position[members].tolist()]
        labelled[members] = True

    stats.labelled = int(labelled.sum())
    stats.predictions_without_label = stats.predictions - stats.labelled
    y_true, y_pred = typed(true[labelled], pred[labelled])
    return MergeResult(
        y_true=y_true,
        y_pred=y_pred,
        y_score=score[labelled] if score is not None else None,
        ids=objects(row_keys.filter(pa.array(labelled)).to_pylist()),
        stats=stats,
    )
