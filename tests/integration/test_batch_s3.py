"""Batch-job monitoring over S3: Parquet files a batch job wrote under hour prefixes in SeaweedFS.

Only the window's hour is read (the previous hour's clean output is not), and the drift injected
into the window's data is found.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import subprocess
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.drift_scenario import DRIFTED, generate
from harness.procs import PYTHON, REPO
from harness.seaweed import SeaweedS3
from tests.analyzer.cli_runs import built_baseline, modeltap

pytestmark = pytest.mark.integration

N = 100_000


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_partitioned_batch_output_on_s3(s3_env: SeaweedS3, s3_bucket: str, tmp_path: Path) -> None:
    train = tmp_path / "train.parquet"
    pq.write_table(pa.table(generate(N, 1, drift=False)), train)
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", str(tmp_path / "baseline"),
         "--progress", "never"],
        cwd=REPO, capture_output=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    hour = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    window = pa.table(generate(N, 2, drift=True))
    with contextlib.closing(s3_env.client()) as client:
        for i in range(2):  # the window's hour: the drifted output in two files
            part = window.slice(i * N // 2, N // 2)
            client.put_object(Bucket=s3_bucket, Key=f"batch/{hour:%Y/%m/%d/%H}/part-{i}.parquet",
                              Body=parquet(part))  # fmt: skip
        earlier = hour - dt.timedelta(hours=1)  # the hour before: clean output, not in the window
        client.put_object(Bucket=s3_bucket, Key=f"batch/{earlier:%Y/%m/%d/%H}/part-0.parquet",
                          Body=parquet(pa.table(generate(N, 3, drift=False))))  # fmt: skip

    reports = tmp_path / "reports"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "s3://{s3_bucket}/captures"\nreports = "file://{reports}"\n'
        f'[store]\nendpoint_url = "{s3_env.endpoint_url}"\npath_style = true\nregion = "{s3_env.region}"\n'
        f'[[endpoints]]\nname = "scoring"\nbaseline = "file://{tmp_path / "baseline"}"\n'
        f'dataset = "s3://{s3_bucket}/batch"\ndataset_format = "parquet"\npartitioned = true\n'
    )
    run = subprocess.run(
        [PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once",
         "--start", hour.isoformat(), "--end", (hour + dt.timedelta(hours=1)).isoformat()],
        cwd=REPO, capture_output=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    (run_json,) = [p for p in reports.rglob("run.json") if "latest" not in p.parts]
    summary = orjson.loads(run_json.read_bytes())
    assert summary["rows"] == N and summary["objects"] == 2
    drift = orjson.loads((run_json.parent / "drift.json").read_bytes())
    assert {k for k, f in drift["features"].items() if f["decision"]["drift"]} == DRIFTED


def test_an_s3_prefix_without_objects_is_no_data_with_a_warning(
    s3_env: SeaweedS3, s3_bucket: str, tmp_path: Path
) -> None:
    """A prefix the job has not written to yet is NoData and a warning naming it (a local
    directory that does not exist is refused: tests/analyzer/test_batch_inputs.py); a prefix
    with objects, none in the window, is NoData without a warning."""
    base = built_baseline(tmp_path, "a\n1.5\n2.5\n")
    hour = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    with contextlib.closing(s3_env.client()) as client:
        client.put_object(Bucket=s3_bucket, Key=f"written/{hour:%Y/%m/%d/%H}/part-0.parquet",
                          Body=parquet(pa.table({"a": [1.5, 2.5]})))  # fmt: skip
    later = hour + dt.timedelta(hours=5)
    for prefix, warned in (("not-yet", True), ("written", False)):
        reports = tmp_path / f"reports-{prefix}"
        config = tmp_path / f"monitor-{prefix}.toml"
        config.write_text(
            f'[monitor]\ncaptures = "s3://{s3_bucket}/captures"\nreports = "file://{reports}"\n'
            f'[store]\nendpoint_url = "{s3_env.endpoint_url}"\npath_style = true\n'
            f'region = "{s3_env.region}"\n[[endpoints]]\nname = "job"\nbaseline = "file://{base}"\n'
            f'dataset = "s3://{s3_bucket}/{prefix}"\npartitioned = true\n'
        )
        done = modeltap("monitor", "--config", str(config), "--once", "--start",
                        later.isoformat(), "--end", (later + dt.timedelta(hours=1)).isoformat())  # fmt: skip
        assert done.returncode == 0, done.stderr
        warnings = [line for line in done.stderr.splitlines() if " WARNING " in line]
        assert len(warnings) == (1 if warned else 0), done.stderr
        if warned:
            assert f"dataset s3://{s3_bucket}/{prefix} holds no objects at all" in warnings[0]
        (run_json,) = [p for p in reports.rglob("run.json") if "latest" not in p.parts]
        assert orjson.loads(run_json.read_bytes())["status"] == "NoData"
