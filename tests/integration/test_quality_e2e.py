"""Model quality end to end: traffic through the sidecar to the demo model into SeaweedFS, labels
written as files and POSTed to the analyzer, a slice of labels flipped so the model looks worse.

Checked: the accuracy Prometheus scrapes equals scikit-learn's on the same pairs, the flipped
slice raises the accuracy violation, labels that arrive late are picked up by the next run,
malformed label files and requests are counted and answered with clear errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score, f1_score

from harness.metrics import scrape, value
from harness.procs import PYTHON, REPO, free_port, running
from harness.prometheus import prometheus
from harness.seaweed import SeaweedS3
from tests.conftest import SidecarProc
from tests.integration.test_delivery_s3 import s3_flags, wait_until
from tests.integration.test_proxy_e2e import call

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-token"


def label_line(event_id: str, label: str) -> bytes:
    doc = {
        "groundTruthData": {"data": label, "encoding": "CSV"},
        "eventMetadata": {"eventId": event_id},
        "eventVersion": "0",
    }
    return orjson.dumps(doc)


def post_labels(analyzer: str, lines: list[bytes], token: str = TOKEN) -> tuple[int, bytes]:
    status, _, _, body = call(
        analyzer, "POST", "/ground-truth?endpoint=iris&variant=AllTraffic", b"\n".join(lines),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/jsonlines"},
    )  # fmt: skip
    return status, body


def test_model_quality_end_to_end(
    demo_model: str,
    start_sidecar: Callable[..., SidecarProc],
    s3_env: SeaweedS3,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    iris = load_iris()
    names = np.asarray(iris.target_names)[iris.target]
    store_flags = ["--store-endpoint-url", s3_env.endpoint_url, "--store-path-style",
                   "--store-region", s3_env.region]  # fmt: skip

    # The model-quality baseline: the model's own predictions on the labelled iris set.
    body = "\n".join(",".join(f"{v:.1f}" for v in row) for row in iris.data).encode()
    status, _, _, answer = call(
        demo_model, "POST", "/invocations", body, {"Content-Type": "text/csv"}
    )
    assert status == 200
    predicted = [line.split(",")[0] for line in answer.decode().splitlines()]
    val = tmp_path / "validation.csv"
    val.write_text(
        "label,prediction\n" + "".join(f"{a},{p}\n" for a, p in zip(names, predicted, strict=True))
    )
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(val), "-o", f"s3://{s3_bucket}/baselines/quality",
         "--problem-type", "MulticlassClassification", "--label", "label", "--prediction",
         "prediction", "--progress", "never", *store_flags],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    train = tmp_path / "train.csv"
    train.write_text("a,b,c,d\n" + body.decode() + "\n")
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", str(train), "-o", f"s3://{s3_bucket}/baselines/data",
         "--progress", "never", *store_flags],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()

    # 300 requests, every iris row twice, half of them JSON; each with an inference id.
    sc = start_sidecar(demo_model, *s3_flags(s3_env, s3_bucket), "--capture.endpoint-name", "iris")
    preds: list[str] = []
    for i in range(300):
        row = iris.data[i % 150]
        if i % 2:
            payload = orjson.dumps({"instances": [row.tolist()]})
            ctype = "application/json"
        else:
            payload, ctype = ",".join(f"{v:.1f}" for v in row).encode(), "text/csv"
        status, _, _, out = call(sc.proxy_url, "POST", "/invocations", payload,
                                 {"Content-Type": ctype, "X-Inference-Id": f"req-{i}"})  # fmt: skip
        assert status == 200
        preds.append(
            orjson.loads(out)["predictions"][0]["label"] if i % 2 else out.decode().split(",")[0]
        )
    wait_until(lambda: value(scrape(sc.admin_url), "modeltap_sidecar_upload_records_total") == 300)
    assert sc.proc.stop() == 0

    truth = [str(names[i % 150]) for i in range(300)]
    flipped = [("setosa" if t == "virginica" and i >= 150 else t) for i, t in enumerate(truth)]

    # Path 1: files in SageMaker's ground-truth layout (the hour the labels were collected),
    # beside a damaged one.
    hour = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
    good = b"\n".join(label_line(f"req-{i}", flipped[i]) for i in range(150)) + b"\n"
    bad = b'{"groundTruthData": {"data": "setosa"}}\nnot json\n' + label_line("req-0", "setosa")
    with contextlib.closing(s3_env.client()) as client:
        client.put_object(
            Bucket=s3_bucket, Key=f"ground-truth/iris/AllTraffic/{hour}/a.jsonl", Body=good
        )
        client.put_object(
            Bucket=s3_bucket, Key=f"ground-truth/iris/AllTraffic/{hour}/0-bad.jsonl", Body=bad
        )

    port = free_port()
    analyzer = f"http://127.0.0.1:{port}"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "s3://{s3_bucket}/captures"\nreports = "s3://{s3_bucket}/reports"\n'
        f'window_minutes = 30\nend_offset_minutes = -5\ninterval_seconds = 2\nhost = "127.0.0.1"\nport = {port}\n'
        f'[store]\nendpoint_url = "{s3_env.endpoint_url}"\npath_style = true\nregion = "{s3_env.region}"\n'
        f'[ground_truth]\ndestination = "s3://{s3_bucket}/ground-truth"\n'
        f'[[endpoints]]\nname = "iris"\nbaseline = "s3://{s3_bucket}/baselines/data"\n'
        f'[endpoints.quality]\nproblem_type = "MulticlassClassification"\n'
        f'baseline = "s3://{s3_bucket}/baselines/quality"\ninference_index = 0\n'
        f'inference_attribute = "predictions[*].label"\n'
    )
    cmd = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    env = {"MODELTAP_GROUND_TRUTH_TOKEN": TOKEN}
    with (
        running("monitor", cmd, tmp_path, f"{analyzer}/healthz", env=env),
        prometheus({"analyzer": [f"127.0.0.1:{port}"]}, tmp_path) as prom,
    ):
        # Path 2: POSTed labels. A wrong token, a malformed body: clear errors, nothing stored.
        assert post_labels(analyzer, [label_line("req-150", "setosa")], token="wrong")[0] == 401
        status, answer = post_labels(analyzer, [label_line("req-150", "x"), b'{"nope": 1}'])
        assert status == 400
        assert [e["line"] for e in orjson.loads(answer)["lines"]] == [2]
        # Only some labels now: the rest arrive late, after the first runs.
        early = [label_line(f"req-{i}", flipped[i]) for i in range(150, 225)]
        assert post_labels(analyzer, early)[0] == 200

        sel = 'job="analyzer",endpoint="iris",variant="AllTraffic"'
        prom.wait_value(f"modeltap_analyzer_quality_label_coverage_ratio{{{sel}}}", 225 / 300)
        late = [label_line(f"req-{i}", flipped[i]) for i in range(225, 300)]
        assert post_labels(analyzer, late)[0] == 200
        prom.wait_value(f"modeltap_analyzer_quality_label_coverage_ratio{{{sel}}}", 1.0)

        expected = accuracy_score(flipped, preds)
        got = prom.wait_value(
            f'modeltap_analyzer_quality_metric{{{sel},metric="accuracy"}}', expected
        )
        assert got == pytest.approx(expected, abs=1e-12) and expected < 0.85
        weighted_f1 = f1_score(flipped, preds, average="weighted")
        f1 = f'modeltap_analyzer_quality_metric{{{sel},metric="weighted_f1"}}'
        prom.wait_value(f"abs({f1} - {weighted_f1!r}) < 1e-12", 0, as_bool=True)
        prom.wait_value(f'modeltap_analyzer_quality_violations{{{sel},metric="accuracy"}}', 1)
        prom.wait_value(f'modeltap_analyzer_quality_merge_rows{{{sel},kind="labelled"}}', 300)
        prom.wait_value(
            f'modeltap_analyzer_quality_bad_label_lines{{{sel},reason="missing_event_id"}}', 1
        )
        prom.wait_value(f'modeltap_analyzer_quality_bad_label_lines{{{sel},reason="bad_json"}}', 1)
        prom.wait_value(
            'modeltap_analyzer_ground_truth_requests_total{job="analyzer",outcome="unauthorized"}',
            1,
        )
        prom.wait_value(
            'modeltap_analyzer_ground_truth_requests_total{job="analyzer",outcome="invalid_lines"}',
            1,
        )
        prom.wait_value('modeltap_analyzer_ground_truth_records_total{job="analyzer"}', 150)

    with contextlib.closing(s3_env.client()) as client:
        listing = client.list_objects_v2(Bucket=s3_bucket, Prefix="reports/iris/")["Contents"]
        # The monitor ran every 2 s; a run after the window moved on (a minute boundary) writes
        # beside the earlier ones. The newest has every label.
        found = sorted(
            (o["LastModified"], o["Key"])
            for o in listing
            if o["Key"].endswith("model-quality/constraint_violations.json")
        )
        assert found, [o["Key"] for o in listing]
        key = found[-1][1]
        doc = orjson.loads(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
        crossed = {v["metric_name"] for v in doc["violations"]}
        assert "accuracy" in crossed  # and the weighted scores that fell with it
        assert crossed <= {"accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5",
                           "weighted_f1", "weighted_f2"}  # fmt: skip
        assert {v["constraint_check_type"] for v in doc["violations"]} == {"LessThanThreshold"}
        stats_key = key.replace("constraint_violations.json", "statistics.json")
        stats = orjson.loads(client.get_object(Bucket=s3_bucket, Key=stats_key)["Body"].read())
        matrix = stats["multiclass_classification_metrics"]["confusion_matrix"]
        assert sum(sum(row.values()) for row in matrix.values()) == 300
