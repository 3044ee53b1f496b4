"""A window's captured rows with their inputs and predictions side by side, keyed ``<id>:<row>``.

Bias needs each row's sensitive attribute (an input) beside its prediction (an output), and
attribution needs input rows to explain; both read the whole records of a window. Inputs of all
records are parsed at once and matched with the predictions row for row; only when the counts
disagree (a record whose output has more or fewer rows than its input) are records matched one
by one, and a record whose sides disagree is dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from analyzer.capture_payload import INPUT
from analyzer.groundtruth.predictions import MergeStats, PredictionSpec, predictions
from analyzer.payloads import ParseStats, PayloadParser, concat_tables


@dataclass
class WindowRows:
    inputs: pa.Table
    keys: npt.NDArray[Any]  # "<inference or event id>:<row in its record>"
    y_pred: npt.NDArray[Any] | None = None
    y_score: npt.NDArray[Any] | None = None
    mismatched_records: int = 0
    parse: ParseStats = field(default_factory=ParseStats)
    merge: MergeStats = field(default_factory=MergeStats)


def _record_id(rec: dict[str, Any]) -> str:
    meta = rec.get("eventMetadata") or {}
    return str(meta.get("inferenceId") or meta.get("eventId") or "")


def aligned_rows(
    records: list[dict[str, Any]], names: list[str], spec: PredictionSpec | None = None
) -> WindowRows:
    """Inputs (columns ``names``) and, with ``spec``, the readable predictions, row for row.

    Without ``spec`` only the inputs are parsed (``keys`` stays empty).
    """
    parser = PayloadParser(names, side=INPUT)
    parse = ParseStats()
    inputs = parser.parse(records, parse)
    if spec is None:
        return WindowRows(inputs, np.zeros(0, dtype=object), parse=parse)
    ids = np.asarray([_record_id(r) for r in records], dtype=object)
    merge = MergeStats(records=len(records))
    p = predictions(records, spec, merge)
    mismatched = 0
    if inputs.num_rows == len(p.record):
        has_input = np.ones(len(p.record), dtype=bool)
    else:
        inputs, has_input, mismatched = _match_one_by_one(records, parser, p.record)
    keep = has_input & p.valid
    inputs = inputs.filter(pa.array(p.valid[has_input]))
    return WindowRows(
        inputs,
        _keys(ids, p.record[keep], p.position[keep]),
        y_pred=p.pred[keep],
        y_score=p.score[keep] if p.score is not None else None,
        mismatched_records=mismatched,
        parse=parse,
        merge=merge,
    )


def _match_one_by_one(
    records: list[dict[str, Any]], parser: PayloadParser, pred_record: npt.NDArray[np.int64]
) -> tuple[pa.Table, npt.NDArray[np.bool_], int]:
    """Inputs of the records whose input and output row counts agree; the prediction rows kept."""
    out_rows = np.bincount(pred_record, minlength=len(records))
    tables, agree = [], np.zeros(len(records), dtype=bool)
    for i, rec in enumerate(records):
        t = parser.parse([rec])
        if t.num_rows == out_rows[i] and t.num_rows:
            tables.append(t)
            agree[i] = True
    mismatched = int((~agree & (out_rows > 0)).sum())
    inputs = concat_tables(tables) if tables else parser.parse([])
    return inputs, agree[pred_record], mismatched


def _keys(
    ids: npt.NDArray[Any], rec: npt.NDArray[np.int64], pos: npt.NDArray[np.int64]
) -> npt.NDArray[Any]:
    if not len(rec):
        return np.zeros(0, dtype=object)
    return np.char.add(np.char.add(ids[rec].astype(str), ":"), pos.astype(str)).astype(object)
