"""Model quality, bias and attribution of a batch dataset: the same as of captured traffic.

The same 300 rows of credit applications, scored by the real credit demo model, reach the
monitor twice: as captured traffic (records with the model's CSV answer, ground truth joined by
inference id) and as a batch job's output table (features, prediction, probability and label
columns, partitioned by hour). One ``run_all`` over both endpoints must give each section the
same report (model-quality statistics.json, bias analysis.json with GE, attribution
analysis.json with its NDCG) and the same Prometheus samples, endpoint label aside.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from analyzer.config import load_config
from analyzer.exporter import AnalyzerCollector
from analyzer.job import evaluate_checks
from analyzer.monitor import load_targets, run_all
from analyzer.results import RunResult
from analyzer.window import Window
from harness.procs import PYTHON, REPO
from modeltap.demo_model import CREDIT_FEATURES, credit_data
from tests.integration.test_quality_estimate_e2e import score
from tests.support.captures import write_captures

pytestmark = pytest.mark.integration
N = 300


def modeltap(*args: str) -> None:
    done = subprocess.run([PYTHON, "-m", "modeltap", *args, "--progress", "never"], cwd=REPO,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def without_times(doc: Any) -> Any:
    """A report without its evaluation time (the two runs differ only there)."""
    if isinstance(doc, dict):
        return {k: without_times(v) for k, v in doc.items() if k != "evaluation_time"}
    if isinstance(doc, list):
        return [without_times(v) for v in doc]
    return doc


def samples(collector: AnalyzerCollector, endpoint: str, prefixes: tuple[str, ...]) -> dict:
    """{(metric, labels but the endpoint): value} of one endpoint's section metrics."""
    out = {}
    for family in collector.collect():
        for s in family.samples:
            if s.labels.get("endpoint") == endpoint and s.name.startswith(prefixes):
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "endpoint"))
                out[(s.name, labels)] = s.value
    return out


def test_batch_dataset_sections_match_captured_traffic(
    start_demo_model: Callable[..., str], tmp_path: Path
) -> None:
    model = start_demo_model("--model", "credit")
    header = ",".join(CREDIT_FEATURES)
    x_val, y_val = credit_data(3000, seed=1)
    pred_val, prob_val = score(model, x_val)
    np.savetxt(tmp_path / "val.csv", np.column_stack([x_val, y_val, pred_val, prob_val]),
               delimiter=",", header=f"{header},label,prediction,probability", comments="",
               fmt="%g")  # fmt: skip
    np.savetxt(tmp_path / "train.csv", x_val, delimiter=",", header=header, comments="", fmt="%g")
    modeltap("baseline", str(tmp_path / "train.csv"), "-o", str(tmp_path / "dbase"))
    modeltap("baseline", str(tmp_path / "val.csv"), "-o", str(tmp_path / "qbase"),
             "--problem-type", "BinaryClassification", "--label", "label",
             "--prediction", "prediction", "--probability", "probability")  # fmt: skip
    modeltap("baseline", str(tmp_path / "val.csv"), "-o", str(tmp_path / "bbase"),
             "--bias-facet", "age", "--bias-facet-threshold", "40", "--label", "label",
             "--prediction", "prediction")  # fmt: skip
    modeltap("baseline", str(tmp_path / "train.csv"), "-o", str(tmp_path / "abase"),
             "--attribution", "--model-url", f"{model}/invocations", "--score-index", "1",
             "--explain-rows", "60")  # fmt: skip

    # The traffic: features as the client sends them, the model's answer as it gives it.
    x, y = credit_data(N, seed=2)
    x[x[:, 0] > 40, 1] *= 0.6  # a slice the model now treats differently: bias to find
    pred, prob = score(model, x)
    inputs = [[f"{v:g}" for v in row] for row in x]
    outputs = [[str(p), f"{q:.6f}"] for p, q in zip(pred, prob, strict=True)]
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(minute=0, second=0,
                                                                       microsecond=0)  # fmt: skip
    window = Window(start, start + dt.timedelta(minutes=10))

    captures = tmp_path / "captures"
    ids = write_captures(captures, "credit", inputs, outputs, start)
    labels = tmp_path / "labels" / "credit" / "AllTraffic" / f"{start:%Y/%m/%d/%H}"
    labels.mkdir(parents=True)
    (labels / "labels.jsonl").write_bytes(b"".join(
        orjson.dumps({"groundTruthData": {"data": str(t), "encoding": "CSV"},
                      "eventMetadata": {"eventId": i}, "eventVersion": "0"}) + b"\n"
        for i, t in zip(ids, y.tolist(), strict=True)
    ))  # fmt: skip
    part = tmp_path / "dataset" / f"{start:%Y/%m/%d/%H}"
    part.mkdir(parents=True)
    lines = [f"{header},prediction,probability,label"] + [
        ",".join([*row, *out, str(t)]) for row, out, t in zip(inputs, outputs, y.tolist(), strict=True)
    ]  # fmt: skip
    (part / "part-0.csv").write_text("\n".join(lines) + "\n")

    sections = (
        f'[endpoints.quality]\nproblem_type = "BinaryClassification"\n'
        f'baseline = "file://{tmp_path / "qbase"}"\n{{quality}}\n'
        f'[endpoints.bias]\nbaseline = "file://{tmp_path / "bbase"}"\nfacet = "age"\n'
        f"facet_threshold = 40\n{{bias}}\n"
        f'[endpoints.attribution]\nbaseline = "file://{tmp_path / "abase"}"\n'
        f'model_url = "{model}/invocations"\nscore_index = 1\nrows = 100\n'
        f"requests_per_second = 100\n"
    )
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{captures}"\nreports = "file://{tmp_path / "reports"}"\n'
        f'[[endpoints]]\nname = "credit"\nbaseline = "file://{tmp_path / "dbase"}"\n'
        + sections.format(
            quality=f'ground_truth = "file://{tmp_path / "labels"}"\ninference_index = 0\n'
            "probability_index = 1",
            bias="inference_index = 0",
        )
        + f'[[endpoints]]\nname = "credit-batch"\nbaseline = "file://{tmp_path / "dbase"}"\n'
        f'dataset = "file://{tmp_path / "dataset"}"\npartitioned = true\n'
        f'label_column = "label"\nprediction_column = "prediction"\n'
        f'probability_column = "probability"\n' + sections.format(quality="", bias="")
    )
    cfg = load_config(config)
    collector = AnalyzerCollector()

    async def run() -> list[RunResult]:
        return await run_all(cfg, await load_targets(cfg), window, collector, evaluate_checks)

    captured, batch = asyncio.run(run())
    assert (captured.error, batch.error) == ("", "")
    assert set(captured.sections) == set(batch.sections) == {
        "data", "quality", "bias", "attribution",
    }  # fmt: skip

    q_cap, q_batch = captured.sections["quality"], batch.sections["quality"]
    assert q_cap.merge.labelled == q_batch.merge.labelled == N
    assert q_cap.statistics is not None
    assert without_times(q_batch.statistics) == without_times(q_cap.statistics)
    assert q_batch.violations == q_cap.violations
    assert without_times(q_batch.estimated) == without_times(q_cap.estimated)

    b_cap, b_batch = captured.sections["bias"], batch.sections["bias"]
    assert (b_cap.rows, b_cap.labelled) == (b_batch.rows, b_batch.labelled) == (N, N)
    assert b_batch.report == b_cap.report
    assert b_batch.violations == b_cap.violations
    (entry,) = b_cap.report["post_training_bias_metrics"]["facets"]["age"]
    by_name = {m["name"]: m for m in entry["metrics"]}
    b = pred.astype(np.float64) - y + 1.0  # GE of the window by hand, Clarify's alpha 2
    assert by_name["GE"]["value"] == pytest.approx(np.mean((b / b.mean()) ** 2 - 1) / 2)
    assert b_cap.violations  # the slice is found (its recall, DCA and TE moved)

    a_cap, a_batch = captured.sections["attribution"], batch.sections["attribution"]
    assert a_cap.rows_explained == a_batch.rows_explained == 100
    assert a_batch.report == a_cap.report
    assert a_batch.ndcg == a_cap.ndcg and set(a_cap.ndcg) == {"label0"}

    prefixes = ("modeltap_analyzer_quality", "modeltap_analyzer_bias",
                "modeltap_analyzer_attribution", "modeltap_analyzer_feature_attribution")  # fmt: skip
    seen = samples(collector, "credit", prefixes)
    assert samples(collector, "credit-batch", prefixes) == seen
    names = {name for name, _ in seen}
    assert {"modeltap_analyzer_bias_metric", "modeltap_analyzer_attribution_ndcg"} <= names
    assert any(n.startswith("modeltap_analyzer_quality") for n in names), names
    # the batch endpoint's files, as a captured endpoint's
    (run_json,) = (tmp_path / "reports").rglob("credit-batch/AllTraffic/*/*/*/*/*/run.json")
    folder = run_json.parent
    for name in ("model-quality/statistics.json", "bias/analysis.json",
                 "attribution/analysis.json", "bias/constraint_violations.json"):  # fmt: skip
        assert (folder / name).is_file(), name
