"""The bias baseline of the README's `val.csv` (features, label y, prediction pred) through the CLI.

CSV is read as text, and the bias baseline took every column as text: the flip test (FT) had no
numeric features ("FT needs the feature columns"), so FT drift could never be flagged, while the
same rows as Parquet gave FT. Now the feature columns get the types the data baseline infers (or
``--type`` fixes), and CSV and Parquet give the same analysis and constraints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from modeltap.demo_model import CREDIT_FEATURES, credit_data
from tests.analyzer.cli_runs import baseline

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

FLAGS = ("--bias-facet", "age", "--bias-facet-threshold", "40", "--label", "y",
         "--prediction", "pred", "--bias-bootstrap", "30", "-q")  # fmt: skip


def _val(n: int = 1500) -> pa.Table:
    x, y = credit_data(n, seed=3)
    pred = ((x[:, 1] > 45_000) & (x[:, 2] < 0.4)).astype(np.int64)  # the model's decisions
    cols: dict[str, Any] = {name: x[:, i] for i, name in enumerate(CREDIT_FEATURES)}
    cols["zip"] = (np.arange(n) % 90 + 10_000).astype(np.int64)  # a code, not a quantity
    return pa.table({**cols, "y": y.astype(np.int64), "pred": pred})


def _metrics(out: Path) -> dict[str, Any]:
    doc = orjson.loads((out / "analysis.json").read_bytes())
    (entry,) = doc["post_training_bias_metrics"]["facets"]["age"]
    return {m["name"]: m for m in entry["metrics"]}


def _bias_baseline(data: Path, out: Path, *flags: str) -> dict[str, Any]:
    done = baseline(str(data), "-o", str(out), *FLAGS, *flags)
    assert done.returncode == 0, done.stderr
    return _metrics(out)


def test_csv_bias_baseline_computes_ft_like_parquet(tmp_path: Path) -> None:
    table = _val()
    pacsv.write_csv(table, tmp_path / "val.csv")
    pq.write_table(table, tmp_path / "val.parquet")
    from_csv = _bias_baseline(tmp_path / "val.csv", tmp_path / "csv")
    from_parquet = _bias_baseline(tmp_path / "val.parquet", tmp_path / "parquet")
    assert "error" not in from_csv["FT"], from_csv["FT"]
    assert isinstance(from_csv["FT"]["value"], float)
    assert from_csv == from_parquet
    assert (tmp_path / "csv" / "constraints.json").read_bytes() == (
        tmp_path / "parquet" / "constraints.json"
    ).read_bytes()
    cons = orjson.loads((tmp_path / "csv" / "constraints.json").read_bytes())
    assert "FT" in orjson.dumps(cons).decode()  # FT has an allowed range: its drift can be flagged


def test_type_overrides_choose_the_flip_tests_features(tmp_path: Path) -> None:
    """``--type zip=String`` keeps a numeric-looking code out of the k-NN, from CSV or Parquet."""
    table = _val()
    pacsv.write_csv(table, tmp_path / "val.csv")
    pq.write_table(table, tmp_path / "val.parquet")
    overridden = _bias_baseline(tmp_path / "val.csv", tmp_path / "csv", "--type", "zip=String")
    parquet = _bias_baseline(tmp_path / "val.parquet", tmp_path / "pq", "--type", "zip=String")
    assert overridden == parquet
    inferred = _bias_baseline(tmp_path / "val.csv", tmp_path / "csv2")
    assert inferred["FT"]["value"] != overridden["FT"]["value"]  # zip did count when numeric
