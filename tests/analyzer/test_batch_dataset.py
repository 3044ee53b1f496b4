"""Batch-job monitoring: `modeltap monitor --once` over tables a batch job wrote under a prefix.

The drift scenario (docs/drift.md §5; 6 of 25 features drifted) is written as the batch job's
output in every format the reader takes (CSV, gzipped CSV, JSON Lines, Parquet) plus one damaged
file; the run must find exactly the injected drift, count the damaged file, and write the usual
reports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import re
import subprocess
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from analyzer.config import load_config
from analyzer.job import list_dataset
from analyzer.targets import BatchDataset
from analyzer.window import Window
from harness.drift_scenario import DRIFTED, generate
from harness.procs import PYTHON, REPO
from modeltap.core.errors import ConfigError
from modeltap.core.store.local import LocalStore

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

N = 100_000


def write_dataset(table: pa.Table, out: Path) -> None:
    """The window's rows as four files in four formats, and a damaged fifth."""
    out.mkdir(parents=True)
    parts = [table.slice(i * N // 4, N // 4) for i in range(4)]
    pacsv.write_csv(parts[0], out / "part-0.csv")
    with (out / "part-1.jsonl").open("wb") as f:
        f.writelines(orjson.dumps(row) + b"\n" for row in parts[1].to_pylist())
    pq.write_table(parts[2], out / "part-2.parquet")
    sink = pa.BufferOutputStream()
    pacsv.write_csv(parts[3], sink)
    (out / "part-3.csv.gz").write_bytes(gzip.compress(sink.getvalue().to_pybytes()))
    (out / "part-4.parquet").write_bytes(b"PAR1 this is not a parquet file")


def test_batch_dataset_drift_is_found(tmp_path: Path) -> None:
    train = tmp_path / "train.parquet"
    pq.write_table(pa.table(generate(N, 1, drift=False)), train)
    baseline = tmp_path / "baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(baseline), "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    dataset = tmp_path / "batch-output"
    write_dataset(pa.table(generate(N, 2, drift=True)), dataset)

    reports = tmp_path / "reports"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path}/unused"\nreports = "file://{reports}"\n\n'
        f'[[endpoints]]\nname = "scoring"\nvariant = "nightly"\n'
        f'baseline = "file://{baseline}"\ndataset = "file://{dataset}"\n'
    )
    now = dt.datetime.now(dt.UTC)
    run = subprocess.run(
        [PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once",
         "--start", (now - dt.timedelta(hours=1)).isoformat(),
         "--end", (now + dt.timedelta(minutes=1)).isoformat()],
        cwd=REPO, capture_output=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    (run_json,) = [p for p in reports.rglob("run.json") if "latest" not in p.parts]
    assert run_json.relative_to(reports).parts[:2] == ("scoring", "nightly")
    summary = orjson.loads(run_json.read_bytes())
    assert summary["rows"] == N
    assert summary["objects"] == 5 and summary["bad_objects"] == 1
    assert summary["status"] == "CompletedWithViolations"
    violations = orjson.loads((run_json.parent / "constraint_violations.json").read_bytes())
    drifted = {
        v["feature_name"]
        for v in violations["violations"]
        if v["constraint_check_type"] == "baseline_drift_check"
    }
    # SageMaker's fixed 0.1 distance catches only the permuted categories; the statistical
    # decision (drift.json, the feature_drift_detected metric) finds all six and nothing else.
    assert "cat_10" in drifted and drifted <= DRIFTED
    drift = orjson.loads((run_json.parent / "drift.json").read_bytes())
    assert {k for k, f in drift["features"].items() if f["decision"]["drift"]} == DRIFTED
    assert b"part-4.parquet" in run.stderr  # the damaged file is named in the log


def test_partitioned_dataset_reads_only_the_window_hours(tmp_path: Path) -> None:
    """With ``partitioned``, objects under other hours' prefixes are not read."""
    root = tmp_path / "ds"
    for hour in ("2026/11/23/10", "2026/11/23/11", "2026/11/23/12"):
        (root / hour).mkdir(parents=True)
        (root / hour / "part.csv").write_text("a\n1\n")
    store = LocalStore(root)
    window = Window(
        dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC),
    )
    found = asyncio.run(
        list_dataset(store, BatchDataset(f"file://{root}", partitioned=True), window)
    )
    assert [o.key for o in found] == ["2026/11/23/11/part.csv"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('dataset_format = "xlsx"', "endpoints[1].dataset_format='xlsx': must be one of '', 'csv'"),
        ('output_columns = ["y"]', "a dataset's rows hold every column by name"),
        (
            '[endpoints.llm]\nbaseline = "file:///lb"',
            "output_columns, preprocessor, target_model and llm read captured records",
        ),
        ('partitioned = true\ndataset = ""', "need dataset"),
        ('label_column = "y"\ndataset = ""', "the *_column settings need dataset"),
        (
            '[endpoints.bias]\nbaseline = "file:///bb"\nfacet = "age"',
            "quality and bias of a dataset need prediction_column or probability_column",
        ),
    ],
)
def test_batch_config_errors_are_clear(tmp_path: Path, extra: str, message: str) -> None:
    config = tmp_path / "monitor.toml"
    dataset = "" if 'dataset = ""' in extra else 'dataset = "file:///data"\n'
    config.write_text(
        '[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\n\n'
        f'[[endpoints]]\nname = "e"\nbaseline = "file:///b"\n{dataset}{extra}\n'
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(config)
