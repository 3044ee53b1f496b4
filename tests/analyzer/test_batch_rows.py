"""analyzer.batch_rows: a batch dataset's predictions and ground truth, typed as the merge of
captured predictions types them."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from analyzer.batch_rows import predictions, read_rows
from analyzer.errors import DataError
from analyzer.groundtruth import Labels
from analyzer.targets import BatchDataset
from analyzer.window import Window
from modeltap.core.store.local import LocalStore

TABLE = pa.table({
    "id": ["a", "b", "c", "d", None],
    "prob": ["0.9", "0.2", "", "0.5", "x"],
    "pred": ["1", "0", "1", " ", "0"],
    "y": ["1", "1", None, "0", "0"],
})  # fmt: skip


def test_label_column_and_prediction_column() -> None:
    ds = BatchDataset("file:///d", label_column="y", prediction_column="pred")
    p = predictions(TABLE, ds, 0.5, None)
    assert p.rows.tolist() == [0, 1, 2, 4]  # row 3's prediction is blank
    assert p.y_pred.dtype == np.float64 and p.y_pred.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert p.labelled.tolist() == [True, True, False, True]
    assert p.y_true.tolist() == [1.0, 1.0, 0.0] and p.y_pred_labelled.tolist() == [1.0, 0.0, 0.0]
    assert p.stats.unparsed_predictions == {"null_prediction": 1}
    assert (p.stats.labels, p.stats.labelled, p.stats.labels_without_prediction) == (4, 3, 1)


def test_probability_threshold_and_ground_truth_by_id() -> None:
    ds = BatchDataset("file:///d", probability_column="prob", id_column="id")
    labels = Labels.from_lists(["a", "d", "zz", "a"], ["0", "1", "1", "1"])  # last "a" wins
    p = predictions(TABLE, ds, 0.5, labels)
    assert p.rows.tolist() == [0, 1, 3]  # no probability in rows 2 and 4
    assert p.y_pred.tolist() == [1.0, 0.0, 1.0]  # 0.5 is at the threshold: positive
    assert p.y_score is not None and p.y_score.tolist() == [0.9, 0.2, 0.5]
    assert p.labelled.tolist() == [True, False, True]
    assert p.y_true.tolist() == [1.0, 1.0]
    assert (p.stats.duplicate_labels, p.stats.labels_without_prediction) == (1, 1)
    with pytest.raises(DataError, match="neither prediction_column nor probability_column"):
        predictions(TABLE, BatchDataset("file:///d"), 0.5, None)


def test_read_rows_skips_a_bad_file_and_fills_missing_columns(tmp_path: Path) -> None:
    hour = tmp_path / "2026/11/23/11"
    hour.mkdir(parents=True)
    (hour / "a.csv").write_text("x,pred\n1,0\n2,1\n")
    (hour / "b.jsonl").write_text('{"x": 3}\n')
    (hour / "c.parquet").write_bytes(b"PAR1 not parquet")
    window = Window(dt.datetime(2026, 11, 23, 11, tzinfo=dt.UTC),
                    dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC))  # fmt: skip
    ds = BatchDataset(f"file://{tmp_path}", partitioned=True)
    found = asyncio.run(read_rows(LocalStore(tmp_path), ds, window, ["x", "pred"]))
    assert found.table.column("pred").to_pylist() == ["0", "1", None]
    assert (found.read.objects, found.read.bad_objects) == (3, 1)
