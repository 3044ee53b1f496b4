"""Bad settings and inputs of `modeltap baseline` / `modeltap monitor`: one line, never a traceback.

* ``--engine dask --scheduler`` at an address where nothing listens was a 54-line traceback from
  `modeltap baseline` (the monitor already said it in one line): now exit 2 and one line.
* A model-quality baseline whose label column is missing named only the columns decoded for it
  ("(columns: pred)") when the file has six: now the file and all of its columns.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.procs import free_port
from tests.analyzer.cli_runs import (
    baseline,
    built_baseline,
    monitor_config,
    monitor_once,
    one_line,
)

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

# distributed retries a refused connection until this timeout (30 s by default).
FAST_DASK = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
VAL = "age,income,debt_ratio,region,label,pred\n" + "".join(
    f"{20 + i % 50},{1000 * (i % 9)},{(i % 7) / 10},{'nsew'[i % 4]},{i % 2},{(i // 2) % 2}\n"
    for i in range(200)
)


def test_baseline_with_an_unreachable_dask_scheduler_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "val.csv").write_text(VAL)
    address = f"tcp://127.0.0.1:{free_port()}"
    done = baseline(
        str(tmp_path / "val.csv"), "-o", str(tmp_path / "out"), "--engine", "dask",
        "--scheduler", address, env=FAST_DASK,
    )  # fmt: skip
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("modeltap baseline: configuration error: --engine dask:"), line
    assert address in line


def test_monitor_with_an_unreachable_dask_scheduler_is_one_line(tmp_path: Path) -> None:
    base = built_baseline(tmp_path, "a\n1\n2\n")
    config = monitor_config(tmp_path, f'name = "ep"\nbaseline = "file://{base}"\n')
    address = f"tcp://127.0.0.1:{free_port()}"
    done = monitor_once(config, "--engine", "dask", "--scheduler", address, env=FAST_DASK)
    assert done.returncode == 2
    assert address in one_line(done.stderr)


def test_missing_label_column_names_the_files_columns(tmp_path: Path) -> None:
    val = tmp_path / "val.csv"
    val.write_text(VAL)
    done = baseline(
        str(val), "-o", str(tmp_path / "out"), "--problem-type", "BinaryClassification",
        "--label", "y", "--prediction", "pred",
    )  # fmt: skip
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"{val}: no column 'y' (columns: age, income, debt_ratio, region, label, pred)" in line


def test_bad_options_exit_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "val.csv").write_text(VAL)
    for flags, expected in [
        (["--problem-type", "Regression"], "--problem-type needs --label"),
        (["--bias-facet", "age"], "--bias-facet needs --label"),
        (["--attribution"], "--attribution needs --model-url"),
        (["--dataset-format", "{csv"], "--dataset-format is not JSON"),
    ]:
        done = baseline(str(tmp_path / "val.csv"), "-o", str(tmp_path / "out"), *flags)
        assert done.returncode == 2, (flags, done.stderr)
        assert expected in one_line(done.stderr)
