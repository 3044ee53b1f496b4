"""Ground truth joined by id for a batch dataset, end to end: the same rows give the same model
quality whether their labels are a column of the dataset or come from the ground-truth store.

A batch job scored 240 rows (two features, a prediction, a probability and a row id); 10 rows
never get a label. Three endpoints read the rows of one hour: ``with-label`` (a CSV with the
label column), ``csv-ids`` and ``parquet-ids`` (the same rows as CSV and as Parquet with integer
ids, no label column), whose labels are SageMaker ground-truth records in a local store, keyed by
row id as the ground-truth endpoint writes them. In local directories (one ``run_all``) and in
SeaweedFS (`modeltap monitor --once`) each run must write the same
model_quality.json (realised metrics, violations, estimate, merge counts) and export the same
model-quality and bias samples for all three, the ground-truth store's own read counts aside;
the columns the endpoint names for label, prediction, probability and id are not taken for
extra input columns by the data-quality checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer.config import load_config
from analyzer.exporter import AnalyzerCollector
from analyzer.job import evaluate_checks
from analyzer.monitor import load_targets, run_all
from analyzer.window import Window
from harness.procs import PYTHON, REPO
from harness.seaweed import SeaweedS3
from tests.integration.test_batch_sections import samples, without_times

pytestmark = pytest.mark.integration
N, UNLABELLED = 240, 10
ENDPOINTS = ("with-label", "csv-ids", "parquet-ids")


def modeltap(*args: str) -> None:
    done = subprocess.run([PYTHON, "-m", "modeltap", *args, "--progress", "never"], cwd=REPO,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def scored(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, probability, prediction, label) of a model that is right about 80% of the time."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(50, 10, n).round(1), rng.integers(18, 80, n)])
    prob = rng.uniform(0, 1, n).round(4)
    pred = (prob >= 0.5).astype(int)
    label = np.where(rng.uniform(0, 1, n) < 0.8, pred, 1 - pred)
    return x, prob, pred, label


def csv_lines(header: str, columns: list[list[str]]) -> str:
    return "\n".join([header, *(",".join(row) for row in zip(*columns, strict=True))]) + "\n"


def label_records(ids: list[int], labels: list[int]) -> bytes:
    return b"".join(
        orjson.dumps({"groundTruthData": {"data": str(t), "encoding": "CSV"},
                      "eventMetadata": {"eventId": str(i)}, "eventVersion": "0"}) + b"\n"
        for i, t in zip(ids, labels, strict=True)
    )  # fmt: skip


def quality_doc(reports: Path, endpoint: str) -> dict[str, Any]:
    (found,) = reports.rglob(f"{endpoint}/AllTraffic/*/*/*/*/*/model_quality.json")
    doc: dict[str, Any] = orjson.loads(found.read_bytes())
    return doc


def bias_files(reports: Path, endpoint: str) -> tuple[Any, Any]:
    """(analysis.json, run.json) of an endpoint's bias run."""
    (found,) = reports.rglob(f"{endpoint}/AllTraffic/*/*/*/*/*/bias/run.json")
    return orjson.loads((found.parent / "analysis.json").read_bytes()), orjson.loads(
        found.read_bytes()
    )


def prepare(tmp_path: Path) -> dt.datetime:
    """Baselines, the three datasets and the ground truth under ``tmp_path``; the rows' hour."""
    x_val, prob_val, pred_val, y_val = scored(2000, seed=1)
    np.savetxt(tmp_path / "val.csv", np.column_stack([x_val, y_val, pred_val, prob_val]),
               delimiter=",", header="income,age,label,prediction,probability", comments="",
               fmt="%g")  # fmt: skip
    np.savetxt(tmp_path / "train.csv", x_val, delimiter=",", header="income,age", comments="",
               fmt="%g")  # fmt: skip
    modeltap("baseline", str(tmp_path / "train.csv"), "-o", str(tmp_path / "dbase"))
    modeltap("baseline", str(tmp_path / "val.csv"), "-o", str(tmp_path / "qbase"),
             "--problem-type", "BinaryClassification", "--label", "label",
             "--prediction", "prediction", "--probability", "probability")  # fmt: skip
    modeltap("baseline", str(tmp_path / "val.csv"), "-o", str(tmp_path / "bbase"),
             "--bias-facet", "age", "--bias-facet-threshold", "40", "--label", "label",
             "--prediction", "prediction")  # fmt: skip

    x, prob, pred, y = scored(N, seed=2)
    y[pred == 1] = np.where(np.arange(int((pred == 1).sum())) % 3 == 0, 0, 1)  # worse: a violation
    ids = np.arange(1000, 1000 + N)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(minute=0, second=0,
                                                                       microsecond=0)  # fmt: skip
    hour = f"{start:%Y/%m/%d/%H}"
    text = [[f"{v:g}" for v in x[:, 0]], [f"{v:g}" for v in x[:, 1]], [str(p) for p in pred],
            [f"{q:g}" for q in prob], [str(i) for i in ids]]  # fmt: skip
    labels_cell = [str(t) for t in y]
    for i in range(UNLABELLED):  # rows whose label never came
        labels_cell[i] = ""
    header = "income,age,prediction,probability,id"
    data = tmp_path / "data"
    for name, body in (
        ("with-label", csv_lines(f"{header},label", [*text, labels_cell])),
        ("csv-ids", csv_lines(header, text)),
    ):
        (data / name / hour).mkdir(parents=True)
        (data / name / hour / "part-0.csv").write_text(body)
    (data / "parquet-ids" / hour).mkdir(parents=True)
    pq.write_table(
        pa.table({"income": x[:, 0], "age": x[:, 1].astype(np.int64), "prediction": pred,
                  "probability": prob, "id": ids}),
        data / "parquet-ids" / hour / "part-0.parquet",
    )  # fmt: skip
    for name in ("csv-ids", "parquet-ids"):  # as the ground-truth endpoint stores them
        folder = data / "labels" / name / "AllTraffic" / hour
        folder.mkdir(parents=True)
        known = slice(UNLABELLED, N)
        (folder / "labels.jsonl").write_bytes(label_records(ids[known].tolist(), y[known].tolist()))
    return start


def monitor_toml(tmp_path: Path, data: str, store: str = "") -> Path:
    """The three endpoints; datasets and ground truth under ``data`` (file:// or s3://)."""

    def endpoint(name: str, roles: str) -> str:
        return (
            f'[[endpoints]]\nname = "{name}"\nbaseline = "file://{tmp_path / "dbase"}"\n'
            f'dataset = "{data}/{name}"\npartitioned = true\n'
            f'prediction_column = "prediction"\nprobability_column = "probability"\n{roles}\n'
            f'[endpoints.quality]\nproblem_type = "BinaryClassification"\n'
            f'baseline = "file://{tmp_path / "qbase"}"\n'
            f'[endpoints.bias]\nbaseline = "file://{tmp_path / "bbase"}"\nfacet = "age"\n'
            f"facet_threshold = 40\n"
        )

    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path / "captures"}"\n'
        f'reports = "file://{tmp_path / "reports"}"\n{store}'
        f'[ground_truth]\ndestination = "{data}/labels"\n'
        + endpoint("with-label", 'label_column = "label"\nid_column = "id"')
        + endpoint("csv-ids", 'id_column = "id"')
        + endpoint("parquet-ids", 'id_column = "id"')
    )
    return config


def check_reports(reports: Path) -> None:
    """model_quality.json and the bias files of the id joins are those of the label column."""
    docs = {name: quality_doc(reports, name) for name in ENDPOINTS}
    want = without_times(docs["with-label"])
    assert want["merge"]["predictions"] == N and want["merge"]["labelled"] == N - UNLABELLED
    assert want["statistics"] is not None and want["violations"]  # the worse model is found
    assert want["invalid_labels"]["count"] == 0
    for name in ("csv-ids", "parquet-ids"):
        got = without_times(docs[name])
        assert got["labels_read"]["objects"] == 1 and got["labels_read"]["labels"] == N - UNLABELLED
        assert {k: v for k, v in got.items() if k != "labels_read"} == {
            k: v for k, v in want.items() if k != "labels_read"
        }, name
    bias = {name: bias_files(reports, name) for name in ENDPOINTS}
    assert bias["with-label"][1]["labelled"] == N - UNLABELLED
    for name in ("csv-ids", "parquet-ids"):
        assert bias[name] == bias["with-label"], name
    for name in ENDPOINTS:  # the role columns are not the model's inputs: not extra columns
        (run_json,) = reports.rglob(f"{name}/AllTraffic/*/*/*/*/*/run.json")
        assert orjson.loads(run_json.read_bytes())["violations_by_section"]["data"] == 0, name


def test_batch_ground_truth_by_id_matches_label_column(tmp_path: Path) -> None:
    start = prepare(tmp_path)
    cfg = load_config(monitor_toml(tmp_path, f"file://{tmp_path / 'data'}"))
    collector = AnalyzerCollector()
    window = Window(start, start + dt.timedelta(minutes=10))

    async def run() -> list[Any]:
        return await run_all(cfg, await load_targets(cfg), window, collector, evaluate_checks)

    results = asyncio.run(run())
    assert [r.endpoint for r in results] == list(ENDPOINTS)
    check_reports(tmp_path / "reports")
    prefixes = ("modeltap_analyzer_quality", "modeltap_analyzer_bias")
    seen = samples(collector, "with-label", prefixes)
    assert ("modeltap_analyzer_quality_metric", (("metric", "accuracy"), ("model", ""),
            ("variant", "AllTraffic"))) in seen  # fmt: skip
    for name in ("csv-ids", "parquet-ids"):
        assert samples(collector, name, prefixes) == seen, name


def test_batch_ground_truth_by_id_on_s3(s3_env: SeaweedS3, s3_bucket: str, tmp_path: Path) -> None:
    """The same through `modeltap monitor --once`, datasets and ground truth in SeaweedFS."""
    start = prepare(tmp_path)
    data = tmp_path / "data"
    with contextlib.closing(s3_env.client()) as client:
        for path in sorted(p for p in data.rglob("*") if p.is_file()):
            key = f"batch/{path.relative_to(data).as_posix()}"
            client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    store = (f'[store]\nendpoint_url = "{s3_env.endpoint_url}"\npath_style = true\n'
             f'region = "{s3_env.region}"\n')  # fmt: skip
    config = monitor_toml(tmp_path, f"s3://{s3_bucket}/batch", store)
    end = start + dt.timedelta(minutes=10)
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once",
         "--start", start.isoformat(), "--end", end.isoformat()],
        cwd=REPO, capture_output=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    check_reports(tmp_path / "reports")
