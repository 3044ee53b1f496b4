"""Ground-truth labels of the wrong type, through `modeltap monitor`: counted, logged, and the run
fails, instead of "Completed, 0 violation(s)" with the failure visible only in model_quality.json.

* Binary (predictions 0/1): a third of the window labelled "maybe". The valid two thirds still
  give the metrics; the 100 bad labels are counted in model_quality.json, named in one log line,
  fail the run, and show in ``modeltap_analyzer_quality_invalid_labels`` (scraped from the
  running monitor).
* Regression labelled "high"/"low": no metric can be computed; the run fails saying why.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from analyzer.quality import ProblemType
from analyzer.quality.label_types import wrong_type
from harness.metrics import scrape, value
from harness.procs import PYTHON, free_port, running
from tests.analyzer.cli_runs import (
    baseline,
    built_baseline,
    monitor_config,
    monitor_once,
    write_captures,
    write_labels,
)

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

N = 300


def _quality_baseline(tmp_path: Path, problem: str, rows: list[str], *flags: str) -> Path:
    val = tmp_path / "val.csv"
    val.write_text("label,prediction\n" + "\n".join(rows) + "\n")
    out = tmp_path / "qbase"
    done = baseline(str(val), "-o", str(out), "--problem-type", problem, "--label", "label",
                    "--prediction", "prediction", "-q", *flags)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _endpoint(tmp_path: Path, problem: str, qbase: Path) -> str:
    dbase = built_baseline(tmp_path, "x\n" + "".join(f"{i % 10}\n" for i in range(50)))
    return (
        f'name = "ep"\nbaseline = "file://{dbase}"\n[endpoints.quality]\n'
        f'problem_type = "{problem}"\nbaseline = "file://{qbase}"\ninference_index = 0\n'
        f'ground_truth = "file://{tmp_path}/gt"\n'
    )


def test_binary_labels_of_the_wrong_type_fail_the_run_and_are_counted(tmp_path: Path) -> None:
    qbase = _quality_baseline(
        tmp_path, "BinaryClassification", [f"{i % 2},{(i // 3) % 2}" for i in range(200)]
    )
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    preds = [str(i % 2) for i in range(N)]
    write_captures(tmp_path / "captures", "ep", [(str(i % 10), p) for i, p in enumerate(preds)], at)
    labels = ["maybe" if i % 3 == 2 else preds[i] for i in range(N)]
    write_labels(tmp_path / "gt", "ep", labels, at)
    port = free_port()
    config = monitor_config(
        tmp_path, _endpoint(tmp_path, "BinaryClassification", qbase),
        f'host = "127.0.0.1"\nport = {port}\ninterval_seconds = 3600\nwindow_minutes = 10\n',
    )  # fmt: skip
    argv = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    base = f"http://127.0.0.1:{port}"
    ident = {"endpoint": "ep", "variant": "AllTraffic", "model": ""}
    with running("monitor", argv, tmp_path, f"{base}/healthz") as proc:
        for _ in range(600):  # the first run starts at once; a bounded wait for its metrics
            samples = scrape(base)
            if value(samples, "modeltap_analyzer_runs_total", **ident, status="Failed"):
                break
            time.sleep(0.1)
        log = proc.log()
    assert value(samples, "modeltap_analyzer_quality_invalid_labels", **ident) == 100
    assert value(samples, "modeltap_analyzer_run_status", **ident, status="Failed") == 1
    # the run's own report prefix, from the endpoint's index (not the capture time's hour: a run
    # just after an hour boundary writes under the next hour)
    (entry,) = orjson.loads((tmp_path / "reports" / "ep" / "index.json").read_bytes())
    run_json = (tmp_path / "reports" / "ep" / entry["href"]).parent
    latest = tmp_path / "reports" / "ep" / "AllTraffic" / "latest"  # the stable copy of the newest
    assert (latest / "run.json").read_bytes() == (run_json / "run.json").read_bytes()
    summary = orjson.loads((run_json / "run.json").read_bytes())
    assert summary["status"] == "Failed"
    doc = orjson.loads((run_json / "model_quality.json").read_bytes())
    assert doc["invalid_labels"] == {
        "count": 100, "of": N, "expected": "one of the classes 0, 1", "examples": ["maybe"]
    }  # fmt: skip
    assert "100 of 300 ground-truth labels are not one of the classes 0, 1" in summary["error"]
    matrix = doc["statistics"]["binary_classification_metrics"]["confusion_matrix"]
    assert sum(sum(row.values()) for row in matrix.values()) == 200  # the valid labels
    assert doc["statistics"]["binary_classification_metrics"]["accuracy"]["value"] == 1.0
    lines = [line for line in log.splitlines() if "100 of 300 ground-truth labels" in line]
    assert lines and "'maybe'" in lines[0], log
    assert "Traceback" not in log


def test_regression_labels_that_are_not_numbers_fail_the_run(tmp_path: Path) -> None:
    qbase = _quality_baseline(
        tmp_path, "Regression", [f"{i / 10},{i / 10 + 0.5}" for i in range(100)]
    )
    write_captures(tmp_path / "captures", "ep", [(str(i % 10), f"{i / 7:.3f}") for i in range(N)])
    write_labels(tmp_path / "gt", "ep", ["high" if i % 2 else "low" for i in range(N)])
    config = monitor_config(tmp_path, _endpoint(tmp_path, "Regression", qbase))
    done = monitor_once(config)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (run_json,) = (tmp_path / "reports").rglob("ep/AllTraffic/*/*/*/*/*/run.json")
    summary = orjson.loads(run_json.read_bytes())
    assert summary["status"] == "Failed"
    doc = orjson.loads((run_json.parent / "model_quality.json").read_bytes())
    assert doc["invalid_labels"] == {
        "count": N, "of": N, "expected": "numbers", "examples": ["high", "low"]
    }  # fmt: skip
    assert doc["statistics"] is None
    assert "300 of 300 ground-truth labels are not numbers" in done.stderr, done.stderr


def test_which_labels_are_of_the_wrong_type() -> None:
    binary = ProblemType.BINARY
    stats: dict[str, Any] = {
        "binary_classification_metrics": {"confusion_matrix": {"0": {}, "1": {}}}
    }

    def bad(problem: ProblemType, true: list[Any], pred: list[Any], **kw: Any) -> list[bool]:
        mask, _ = wrong_type(problem, np.asarray(true, object), np.asarray(pred, object), **kw)
        return [bool(b) for b in mask]

    assert bad(binary, ["1", "maybe", "0", "2"], ["1", "0", "0", "1"], statistics=stats) == [
        False, True, False, True
    ]  # fmt: skip
    # A window that predicted one class: the baseline names the other.
    assert bad(binary, ["0", "1", "x"], ["1", "1", "1"], statistics=stats) == [False, False, True]
    # Text classes: the two the predictions and the positive label know.
    assert bad(binary, ["yes", "no", "maybe"], ["yes", "no", "no"], statistics={}) == [
        False, False, True
    ]  # fmt: skip
    # Multiclass: only the kind is held (a class the model never predicts may be real).
    multi = ProblemType.MULTICLASS
    assert bad(multi, ["a", "z"], ["a", "b"], statistics={}) == [False, False]
    assert bad(multi, ["1", "z", "nan"], ["1", "2"], statistics={}) == [False, True, True]
    reg = ProblemType.REGRESSION
    assert bad(reg, ["1.5", "high", "1e3", " 7"], ["1", "2", "3", "4"], statistics={}) == [
        False, True, False, True
    ]  # fmt: skip
