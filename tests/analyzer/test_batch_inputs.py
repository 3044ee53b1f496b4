"""Batch datasets through `modeltap monitor --once`: extra columns, and a dataset path that is wrong.

* 13 columns beyond a 6-feature baseline raised nothing: the reader decoded only the baseline's
  columns and recorded only those as seen, so ``extra_column_check`` could never fire.
* A dataset directory that does not exist was a run with status NoData, exit 0 and no word. It is
  a misconfiguration: the monitor refuses to start (exit 2, one line), and a directory that goes
  away later fails the run with one line. An existing prefix without any object (an S3 prefix the
  job has not written yet) stays NoData, with a warning naming it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from analyzer.config import load_config
from analyzer.monitor import load_target, run_all
from analyzer.results import FAILED
from analyzer.window import Window
from tests.analyzer.cli_runs import (
    END,
    START,
    built_baseline,
    monitor_config,
    monitor_once,
    one_line,
)

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

FEATURES = [f"f{i}" for i in range(6)]
EXTRA = [f"extra_{i:02d}" for i in range(13)]


def _table(rows: int, names: list[str]) -> pa.Table:
    return pa.table(
        {n: [(i * (k + 3)) % 11 + 0.5 for i in range(rows)] for k, n in enumerate(names)}
    )


def _baseline(tmp_path: Path) -> Path:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(_table(200, FEATURES), sink)
    return built_baseline(tmp_path, sink.getvalue().to_pybytes().decode())


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("features", [FEATURES, []], ids=["with-features", "only-extra"])
def test_extra_columns_of_a_batch_dataset_are_violations(
    tmp_path: Path, fmt: str, features: list[str]
) -> None:
    base = _baseline(tmp_path)
    dataset = tmp_path / "batch"
    dataset.mkdir()
    table = _table(100, [*features, *EXTRA])
    if fmt == "csv":
        pacsv.write_csv(table, dataset / "part-0.csv")
    elif fmt == "parquet":
        pq.write_table(table, dataset / "part-0.parquet")
    else:
        (dataset / "part-0.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in table.to_pylist())
        )
    config = monitor_config(
        tmp_path, f'name = "job"\nbaseline = "file://{base}"\ndataset = "file://{dataset}"\n'
    )
    done = monitor_once(config)
    assert done.returncode == 0, done.stderr
    (run_json,) = [p for p in (tmp_path / "reports").rglob("run.json") if "latest" not in p.parts]
    assert orjson.loads(run_json.read_bytes())["rows"] == 100
    violations = orjson.loads((run_json.parent / "constraint_violations.json").read_bytes())
    extra = sorted(
        v["feature_name"]
        for v in violations["violations"]
        if v["constraint_check_type"] == "extra_column_check"
    )
    assert extra == EXTRA
    on_features = {
        (v["feature_name"], v["constraint_check_type"])
        for v in violations["violations"]
        if v["feature_name"] in FEATURES
    }
    # A file without the baseline's columns: each is missing (its rows still count).
    assert on_features == (
        {(f, "missing_column_check") for f in FEATURES} if not features else set()
    )


def test_a_dataset_directory_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    missing = tmp_path / "no-such-dir"
    config = monitor_config(
        tmp_path, f'name = "job"\nbaseline = "file://{base}"\ndataset = "file://{missing}"\n'
    )
    done = monitor_once(config)
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert f"dataset file://{missing}: no such directory" in line, line


def test_an_empty_dataset_prefix_is_no_data_with_a_warning(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    dataset = tmp_path / "batch"
    dataset.mkdir()
    config = monitor_config(
        tmp_path, f'name = "job"\nbaseline = "file://{base}"\ndataset = "file://{dataset}"\n'
    )
    done = monitor_once(config)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, done.stderr
    assert f"dataset file://{dataset} holds no objects at all" in warnings[0]
    (run_json,) = [p for p in (tmp_path / "reports").rglob("run.json") if "latest" not in p.parts]
    assert orjson.loads(run_json.read_bytes())["status"] == "NoData"


def test_a_dataset_directory_removed_after_the_start_fails_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:

    base = _baseline(tmp_path)
    dataset = tmp_path / "batch"
    dataset.mkdir()
    config = monitor_config(
        tmp_path, f'name = "job"\nbaseline = "file://{base}"\ndataset = "file://{dataset}"\n'
    )
    cfg = load_config(config)

    async def run() -> str:
        target = await load_target(cfg.endpoints[0], cfg.store)
        dataset.rmdir()
        (result,) = await run_all(cfg, [target], Window(START, END))
        assert result.status == FAILED
        return result.error

    assert f"{dataset}: no such directory" in asyncio.run(run())
    (failed,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed.exc_info is None and "no such directory" in failed.getMessage()
