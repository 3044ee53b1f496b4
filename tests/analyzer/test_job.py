from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import orjson
import pytest

from analyzer import profile
from analyzer.checks import Evaluation, suggest_constraints
from analyzer.data_quality.result import DataResult
from analyzer.job import run_window
from analyzer.results import COMPLETED, FAILED, NO_DATA, WITH_VIOLATIONS
from analyzer.targets import Target
from analyzer.window import Window
from modeltap.core.store.local import LocalStore

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def capture_line(row: list[float], when: dt.datetime) -> bytes:
    rec = {
        "captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                          "data": ",".join(map(str, row)), "encoding": "CSV"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0",
    }  # fmt: skip
    return orjson.dumps(rec) + b"\n"


def baseline() -> Target:
    rng = np.random.default_rng(0)
    base = profile({"a": rng.normal(0, 1, 5000), "b": rng.normal(5, 2, 5000)})
    return Target("ep", "v1", base, suggest_constraints(base))


async def test_window_profile_reports_and_statuses(tmp_path: Path) -> None:
    captures, reports = LocalStore(tmp_path / "captures"), LocalStore(tmp_path / "reports")
    rng = np.random.default_rng(1)
    rows = rng.normal(0, 1, (300, 2)).round(4)
    lines = [capture_line(list(r), T0 + dt.timedelta(seconds=10 * i)) for i, r in enumerate(rows)]
    await captures.put(
        "ep/v1/2026/03/01/10/00-00-000-a.jsonl", b"".join(lines[:200]), content_type="x"
    )
    await captures.put(
        "ep/v1/2026/03/01/10/33-20-000-b.jsonl", b"".join(lines[200:]) + b"{torn", content_type="x"
    )
    await captures.put(
        "ep/v1/2026/03/01/10/50-00-000-c.jsonl.gz", b"\x1f\x8bnot gzip", content_type="x"
    )
    target = baseline()
    window = Window(T0, T0 + dt.timedelta(hours=1))

    result = await run_window(captures, reports, target, window, evaluate=None)  # profile only
    assert result.status == COMPLETED
    assert result.rows == 300
    assert (result.read.objects, result.read.bad_objects, result.read.bad_lines) == (3, 1, 1)
    stats = orjson.loads(
        (
            tmp_path / "reports" / "ep/v1/2026/03/01/11/2026-03-01T11-00-00Z/statistics.json"
        ).read_bytes()
    )
    assert stats["dataset"]["item_count"] == 300
    a = next(f for f in stats["features"] if f["name"] == "a")
    assert abs(a["numerical_statistics"]["mean"] - rows[:, 0].mean()) < 1e-9
    run = orjson.loads(
        (tmp_path / "reports" / "ep/v1/2026/03/01/11/2026-03-01T11-00-00Z/run.json").read_bytes()
    )
    assert run["status"] == COMPLETED and run["bad_objects"] == 1

    # The real checks: "a" was captured as N(0, 1) like its baseline, "b" as N(0, 1) against N(5, 2).
    checked = await run_window(captures, reports, target, window)  # the checks are the default
    assert checked.status == WITH_VIOLATIONS
    data = checked.sections["data"]
    assert isinstance(data, DataResult) and data.evaluation is not None
    assert {(v.feature_name, v.constraint_check_type) for v in data.violations} == {
        ("b", "baseline_drift_check")
    }
    assert data.evaluation.features["b"].drift is True
    assert data.evaluation.features["a"].drift is False
    drift = orjson.loads(
        (tmp_path / "reports" / "ep/v1/2026/03/01/11/2026-03-01T11-00-00Z/drift.json").read_bytes()
    )
    assert drift["features"]["b"]["measures"]["ks_statistic"] > 0.5

    empty = await run_window(captures, reports, target, Window(T0 - dt.timedelta(hours=2), T0))
    assert empty.status == NO_DATA and empty.rows == 0

    def boom(*_: object) -> Evaluation:
        raise RuntimeError("evaluator broke")

    failed = await run_window(captures, LocalStore(tmp_path / "f"), target, window, evaluate=boom)
    assert failed.status == FAILED and failed.error == "data: RuntimeError: evaluator broke"
    written = tmp_path / "f" / "ep/v1/2026/03/01/11/2026-03-01T11-00-00Z"
    run = orjson.loads((written / "run.json").read_bytes())
    assert run["status"] == FAILED and run["violations_by_section"] == {"data": 0}
    assert (written / "statistics.json").exists()  # the window's profile stands
    assert orjson.loads((written / "constraint_violations.json").read_bytes()) == {"violations": []}


async def test_one_model_of_a_multi_model_server(tmp_path: Path) -> None:
    captures, reports = LocalStore(tmp_path / "captures"), LocalStore(tmp_path / "reports")
    lines = []
    for i in range(40):
        rec = orjson.loads(capture_line([float(i), 1.0], T0 + dt.timedelta(seconds=i)))
        rec["modeltap"] = {"targetModel": "model-a.tar.gz" if i % 4 == 0 else "model-b.tar.gz"}
        lines.append(orjson.dumps(rec) + b"\n")
    await captures.put("ep/v1/2026/03/01/10/00-00-000-a.jsonl", b"".join(lines), content_type="x")
    base = baseline()
    target = Target("ep", "v1", base.baseline, base.constraints, target_model="model-a.tar.gz")
    result = await run_window(
        captures, reports, target, Window(T0, T0 + dt.timedelta(hours=1)), evaluate=None
    )
    assert result.rows == 10 and result.model == "model-a.tar.gz"
    stats = orjson.loads(
        (
            tmp_path
            / "reports/ep/v1/model-a.tar.gz/2026/03/01/11/2026-03-01T11-00-00Z/statistics.json"
        ).read_bytes()
    )
    assert stats["dataset"]["item_count"] == 10


def both_sides(inp: str, ictype: str, out: str, octype: str, when: dt.datetime) -> bytes:
    enc = {"text/csv": "CSV", "application/json": "JSON"}
    rec = {
        "captureData": {
            "endpointInput": {
                "observedContentType": ictype,
                "mode": "INPUT",
                "data": inp,
                "encoding": enc[ictype],
            },
            "endpointOutput": {
                "observedContentType": octype,
                "mode": "OUTPUT",
                "data": out,
                "encoding": enc[octype],
            },
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    return orjson.dumps(rec) + b"\n"


async def test_output_columns_join_the_inputs_row_for_row(tmp_path: Path) -> None:
    captures = LocalStore(tmp_path / "captures")
    lines = [
        both_sides("1,2\n3,4", "text/csv", "setosa,0.9\nvirginica,0.8\n", "text/csv", T0),
        both_sides('{"instances": [[5, 6]]}', "application/json",
                   '{"predictions": [{"label": "setosa", "probability": 0.7}]}', "application/json", T0),
        both_sides("7,8\n9,10", "text/csv", "setosa,0.6\n", "text/csv", T0),  # one output for two rows
    ]  # fmt: skip
    await captures.put("ep/v1/2026/03/01/10/00-00-000-a.jsonl", b"".join(lines), content_type="x")
    rng = np.random.default_rng(0)
    base = profile({
        "a": rng.normal(0, 1, 500), "b": rng.normal(0, 1, 500),
        "label": rng.choice(np.array(["setosa", "virginica"], dtype=object), 500), "probability": rng.random(500),
    })  # fmt: skip
    target = Target(
        "ep", "v1", base, suggest_constraints(base), output_columns=("label", "probability")
    )
    result = await run_window(
        captures, None, target, Window(T0, T0 + dt.timedelta(hours=1)), evaluate=None
    )
    assert result.rows == 5
    assert result.parse.reasons == {"output_rows_mismatch": 1}
    feats = {f["name"]: f for f in result.sections["data"].statistics["features"]}
    label = feats["label"]["string_statistics"]
    assert label["common"]["num_present"] == 3 and label["common"]["num_missing"] == 2
    assert feats["probability"]["numerical_statistics"]["sum"] == pytest.approx(0.9 + 0.8 + 0.7)
    assert feats["a"]["numerical_statistics"]["sum"] == 1 + 3 + 5 + 7 + 9
