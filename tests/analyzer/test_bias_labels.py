"""Ground-truth labels of the wrong type in a bias run, as model quality treats them: a third of
the labels are "maybe" beside 0/1 predictions, in captured traffic (labels joined by id from the
ground-truth store) and in a batch dataset's label column. Before, they counted as negatives and
bent AD, RD, TE, GE ... silently; now they are left out of the metrics that need labels, counted
in bias/run.json (``invalid_labels``) and ``modeltap_analyzer_bias_invalid_labels``, and the run
fails with one line naming examples."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from analyzer.config import load_config
from analyzer.exporter import AnalyzerCollector
from analyzer.job import evaluate_checks
from analyzer.monitor import load_targets, run_all
from analyzer.results import RunResult
from analyzer.window import Window
from tests.analyzer.cli_runs import (
    END,
    NOW,
    START,
    baseline,
    built_baseline,
    write_captures,
    write_labels,
)

pytestmark = pytest.mark.command  # runs a modeltap command in a child process

N = 300
LINE = "100 of 300 ground-truth labels are not one of the classes 0, 1 (e.g. 'maybe')"


def gauge(collector: AnalyzerCollector, name: str, endpoint: str) -> float | None:
    for family in collector.collect():
        for s in family.samples:
            if s.name == name and s.labels.get("endpoint") == endpoint:
                return float(s.value)
    return None


def test_bias_labels_of_the_wrong_type_are_counted_and_fail_the_run(tmp_path: Path) -> None:
    val = tmp_path / "val.csv"
    val.write_text("x,label,prediction\n" + "".join(
        f"{i % 10},{i % 2},{(i // 3) % 2}\n" for i in range(200)
    ))  # fmt: skip
    done = baseline(str(val), "-o", str(tmp_path / "bbase"), "--bias-facet", "x",
                    "--bias-facet-threshold", "4", "--label", "label", "--prediction",
                    "prediction", "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr
    dbase = built_baseline(tmp_path, "x\n" + "".join(f"{i % 10}\n" for i in range(50)))
    preds = [str(i % 2) for i in range(N)]
    labels = ["maybe" if i % 3 == 2 else preds[i] for i in range(N)]
    write_captures(tmp_path / "captures", "live", [(str(i % 10), p) for i, p in enumerate(preds)])
    write_labels(tmp_path / "gt", "live", labels)
    part = tmp_path / "dataset" / NOW.strftime("%Y/%m/%d/%H")
    part.mkdir(parents=True)
    (part / "part-0.csv").write_text("x,prediction,label\n" + "".join(
        f"{i % 10},{p},{t}\n" for i, (p, t) in enumerate(zip(preds, labels, strict=True))
    ))  # fmt: skip
    bias = f'[endpoints.bias]\nbaseline = "file://{tmp_path / "bbase"}"\nfacet = "x"\n' + (
        "facet_threshold = 4\nbootstrap = 0\n"
    )
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path / "captures"}"\n'
        f'reports = "file://{tmp_path / "reports"}"\n'
        f'[ground_truth]\ndestination = "file://{tmp_path / "gt"}"\n'
        f'[[endpoints]]\nname = "live"\nbaseline = "file://{dbase}"\n{bias}inference_index = 0\n'
        f'[[endpoints]]\nname = "batch"\nbaseline = "file://{dbase}"\n'
        f'dataset = "file://{tmp_path / "dataset"}"\npartitioned = true\n'
        f'prediction_column = "prediction"\nlabel_column = "label"\n{bias}'
    )
    cfg = load_config(config)
    collector = AnalyzerCollector()

    async def run() -> list[RunResult]:
        window = Window(START, END)
        return await run_all(cfg, await load_targets(cfg), window, collector, evaluate_checks)

    found: dict[str, Any] = {}
    for result in asyncio.run(run()):
        name = result.endpoint
        assert result.status == "Failed", name
        assert result.error == f"bias: {LINE}; they are left out of the metrics", name
        (run_json,) = (tmp_path / "reports").rglob(f"{name}/AllTraffic/*/*/*/*/*/bias/run.json")
        doc = orjson.loads(run_json.read_bytes())
        assert doc["invalid_labels"] == {
            "count": 100, "of": N, "expected": "one of the classes 0, 1", "examples": ["maybe"]
        }, name  # fmt: skip
        assert (doc["rows"], doc["labelled"]) == (N, 200), name
        assert gauge(collector, "modeltap_analyzer_bias_invalid_labels", name) == 100, name
        found[name] = orjson.loads((run_json.parent / "analysis.json").read_bytes())
    assert set(found) == {"live", "batch"}
    assert found["live"] == found["batch"]
    (entry,) = found["live"]["post_training_bias_metrics"]["facets"]["x"]
    ad = {m["name"]: m for m in entry["metrics"]}["AD"]
    assert ad["value"] == 0.0  # the 200 valid labels equal the predictions: no accuracy gap
