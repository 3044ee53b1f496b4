"""Feature attribution of a model with several outputs, against a real model server.

The iris demo model answers every class's probability (``--probabilities``). The baseline
explains all three (``--all-outputs``, named by ``--output-labels``), the monitor explains each
window's rows the same way: one explanation and one NDCG per class, each labelled, and a
violation names the class whose ranking moved. The model swapped for one trained with
petal_length shuffled no longer ranks it first for some class: that class's NDCG falls.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris

from harness.procs import PYTHON, REPO
from modeltap.demo_model import FEATURES
from tests.support.captures import write_captures

pytestmark = pytest.mark.integration
CLASSES = ("setosa", "versicolor", "virginica")
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def modeltap(*args: str) -> None:
    done = subprocess.run([PYTHON, "-m", "modeltap", *args], cwd=REPO, capture_output=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def monitor(tmp_path: Path, store: Path, model: str, name: str) -> dict[str, Any]:
    reports = tmp_path / f"reports-{name}"
    config = tmp_path / f"monitor-{name}.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{store}"\nreports = "file://{reports}"\n'
        f'[[endpoints]]\nname = "iris"\nbaseline = "file://{tmp_path / "dbase"}"\n'
        f'[endpoints.attribution]\nbaseline = "file://{tmp_path / "abase"}"\n'
        f'model_url = "{model}/invocations"\ncontent_type = "application/json"\n'
        f'score_path = "predictions[*].probabilities"\nall_outputs = true\n'
        f"rows = 60\nrequests_per_second = 100\n"
    )
    end = T0 + dt.timedelta(minutes=10)
    modeltap("monitor", "--config", str(config), "--once", "--start", T0.isoformat(),
             "--end", end.isoformat())  # fmt: skip
    (run_json,) = reports.rglob("iris/AllTraffic/*/*/*/*/*/run.json")
    folder = run_json.parent / "attribution"
    return {
        "run": orjson.loads((folder / "run.json").read_bytes()),
        "analysis": orjson.loads((folder / "analysis.json").read_bytes()),
        "violations": orjson.loads((folder / "constraint_violations.json").read_bytes()),
    }


def test_each_output_explained_labelled_and_checked(
    start_demo_model: Callable[..., str], tmp_path: Path
) -> None:
    model = start_demo_model("--model", "iris", "--probabilities")
    x = load_iris().data
    rng = np.random.default_rng(0)
    train = tmp_path / "train.csv"
    np.savetxt(train, x, delimiter=",", header=",".join(FEATURES), comments="", fmt="%g")
    modeltap("baseline", str(train), "-o", str(tmp_path / "dbase"), "--progress", "never")
    modeltap("baseline", str(train), "-o", str(tmp_path / "abase"), "--progress", "never",
             "--attribution", "--model-url", f"{model}/invocations",
             "--model-content-type", "application/json",
             "--score-path", "predictions[*].probabilities", "--all-outputs",
             "--output-labels", ",".join(CLASSES), "--explain-rows", "60")  # fmt: skip
    base = orjson.loads((tmp_path / "abase" / "analysis.json").read_bytes())
    kernel = base["explanations"]["kernel_shap"]
    assert list(kernel) == list(CLASSES)
    for entry in kernel.values():
        assert list(entry["global_shap_values"]) == list(FEATURES)
    # the three classes' probabilities sum to 1: so do their expected values
    assert sum(e["expected_value"] for e in kernel.values()) == pytest.approx(1.0, abs=1e-6)

    store = tmp_path / "captures"
    write_captures(store, "iris", x[rng.permutation(len(x))].tolist(), None, T0)

    same = monitor(tmp_path, store, model, "same")
    assert same["run"]["rows_explained"] == 60
    assert list(same["analysis"]["explanations"]["kernel_shap"]) == list(CLASSES)
    assert set(same["run"]["ndcg"]) == set(CLASSES)
    assert min(same["run"]["ndcg"].values()) > 0.9, same["run"]["ndcg"]
    assert same["violations"]["violations"] == []

    swapped = start_demo_model("--model", "iris", "--probabilities",
                               "--permute-feature", "petal_length", name="swapped")  # fmt: skip
    moved = monitor(tmp_path, store, swapped, "swapped")
    scores = moved["run"]["ndcg"]
    assert set(scores) == set(CLASSES)
    found = moved["violations"]["violations"]
    assert found, scores
    assert {v["label"] for v in found} == {c for c, s in scores.items() if s < 0.9}
    assert all(v["constraint_check_type"] == "feature_attribution_drift_check" for v in found)
