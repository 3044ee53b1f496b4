"""Performance estimated before labels arrive (binary, confidence-based), then realised beside it.

The credit demo model serves through the sidecar. Window A's traffic is drawn like the
validation set; window B's only from where the model is unsure (a covariate shift: which rows
come changes, how labels follow features does not), so its accuracy really falls. Before B's
labels exist the estimate already shows the fall; once they land, the realised accuracy agrees
with it, and both stand side by side in model_quality.json.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from harness.metrics import scrape, value
from harness.procs import PYTHON, REPO
from modeltap.demo_model import CREDIT_FEATURES, credit_data
from tests.conftest import SidecarProc
from tests.integration.test_delivery_s3 import wait_until
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration

ROWS_PER_REQUEST = 4


def csv_rows(x: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{v:g}" for v in row) for row in x).encode()


def score(model: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted label, probability of approval) straight from the model server."""
    status, _, _, body = call(
        model, "POST", "/invocations", csv_rows(x), {"Content-Type": "text/csv"}
    )
    assert status == 200
    cols = np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2)
    return cols[:, 0].astype(np.int64), cols[:, 1]


def send(sc: SidecarProc, x: np.ndarray, prefix: str) -> tuple[dt.datetime, dt.datetime]:
    """Send ``x``; return its window in whole seconds (inferenceTime's resolution)."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(0, len(x), ROWS_PER_REQUEST):
        status = call(sc.proxy_url, "POST", "/invocations", csv_rows(x[i : i + ROWS_PER_REQUEST]),
                      {"Content-Type": "text/csv", "X-Inference-Id": f"{prefix}-{i}"})[0]  # fmt: skip
        assert status == 200
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep(max(0.0, (end - dt.datetime.now(dt.UTC)).total_seconds()) + 0.05)
    return start, end


def write_labels(store: Path, y: np.ndarray, prefix: str) -> None:
    """SageMaker ground-truth lines, one per row: id ``<inference id>:<row in the request>``."""
    hour = (
        store
        / "ground-truth"
        / "credit"
        / "AllTraffic"
        / dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
    )
    hour.mkdir(parents=True, exist_ok=True)
    lines = [
        orjson.dumps(
            {
                "groundTruthData": {"data": str(int(label)), "encoding": "CSV"},
                "eventMetadata": {
                    "eventId": f"{prefix}-{i - i % ROWS_PER_REQUEST}:{i % ROWS_PER_REQUEST}"
                },
                "eventVersion": "0",
            }
        )
        for i, label in enumerate(y)
    ]
    (hour / f"{prefix}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def monitor_once(
    config: Path, window: tuple[dt.datetime, dt.datetime], reports: Path
) -> dict[str, Any]:
    for old in reports.rglob("model_quality.json"):
        old.unlink()
    run = subprocess.run(
        [PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once",
         "--start", window[0].isoformat(), "--end", window[1].isoformat()],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    (path,) = [p for p in reports.rglob("model_quality.json") if "latest" not in p.parts]
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return doc


def realised(doc: dict[str, Any]) -> float:
    return float(doc["statistics"]["binary_classification_metrics"]["accuracy"]["value"])


def estimated(doc: dict[str, Any]) -> float:
    return float(doc["estimated"]["estimated_binary_classification_metrics"]["accuracy"]["value"])


def test_estimate_shows_the_drop_before_labels_and_agrees_after(
    start_demo_model: Callable[..., str],
    start_sidecar: Callable[..., SidecarProc],
    tmp_path: Path,
) -> None:
    model = start_demo_model("--model", "credit")
    x_val, y_val = credit_data(4000, seed=1)
    pred, prob = score(model, x_val)
    val = tmp_path / "validation.csv"
    table = np.column_stack([y_val, pred, prob])
    np.savetxt(
        val, table, delimiter=",", header="label,prediction,probability", comments="", fmt="%g"
    )
    train = tmp_path / "train.csv"
    np.savetxt(train, x_val, delimiter=",", header=",".join(CREDIT_FEATURES), comments="", fmt="%g")
    for args in (
        [str(val), "-o", str(tmp_path / "qbase"), "--problem-type", "BinaryClassification",
         "--label", "label", "--prediction", "prediction", "--probability", "probability"],
        [str(train), "-o", str(tmp_path / "dbase")],
    ):  # fmt: skip
        done = subprocess.run([PYTHON, "-m", "modeltap", "baseline", *args, "--progress", "never"],
                              cwd=REPO, capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()

    pool_x, pool_y = credit_data(20000, seed=2)
    _, pool_p = score(model, pool_x)
    clean = np.arange(400)
    unsure = np.flatnonzero((pool_p > 0.3) & (pool_p < 0.7))[-400:]
    assert len(unsure) == 400

    sc = start_sidecar(
        model, "--capture.sample-percent", "100", "--capture.endpoint-name", "credit"
    )
    window_a = send(sc, pool_x[clean], "a")
    window_b = send(sc, pool_x[unsure], "b")
    wait_until(lambda: value(scrape(sc.admin_url), "modeltap_sidecar_upload_records_total") == 200)
    assert sc.proc.stop() == 0

    reports = tmp_path / "reports"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{sc.store}"\nreports = "file://{reports}"\n'
        f'[ground_truth]\ndestination = "file://{sc.store}/ground-truth"\n'
        f'[[endpoints]]\nname = "credit"\nbaseline = "file://{tmp_path / "dbase"}"\n'
        f'[endpoints.quality]\nproblem_type = "BinaryClassification"\n'
        f'baseline = "file://{tmp_path / "qbase"}"\ninference_index = 0\nprobability_index = 1\n'
    )
    write_labels(sc.store, pool_y[clean], "a")
    doc_a = monitor_once(config, window_a, reports)
    assert doc_a["label_coverage"] == 1.0
    assert abs(estimated(doc_a) - realised(doc_a)) < 0.07

    # Window B, labels not yet in: only the estimate speaks, and it already shows the drop.
    doc_b = monitor_once(config, window_b, reports)
    assert doc_b["statistics"] is None and doc_b["merge"]["labelled"] == 0
    assert estimated(doc_b) < estimated(doc_a) - 0.15

    # B's labels land: the next run realises the drop, and it agrees with the estimate.
    write_labels(sc.store, pool_y[unsure], "b")
    doc_b = monitor_once(config, window_b, reports)
    assert doc_b["label_coverage"] == 1.0
    assert realised(doc_b) < realised(doc_a) - 0.15
    assert abs(estimated(doc_b) - realised(doc_b)) < 0.08
    expected = float(np.mean(score(model, pool_x[unsure])[0] == pool_y[unsure]))
    assert realised(doc_b) == pytest.approx(expected, abs=1e-12)
