"""One-vs-rest bias facets (neither values nor a threshold) name each facet value the same way
whatever carried the rows: CSV and captured CSV payloads give the text "41", JSON Lines and
Parquet give the number 41.0; the report, its violations and the exported ``facet_value`` label
must all say "41" (and "41.5" for a fraction), or a baseline built from one format never matches
a window read from another."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.bias import Facet
from analyzer.bias.constraints import suggest_constraints
from analyzer.bias.run import BiasResult, BiasTarget, run_bias, run_bias_dataset
from analyzer.groundtruth import PredictionSpec
from analyzer.targets import BatchDataset
from analyzer.window import Window
from modeltap.core.store.local import LocalStore
from tests.support.captures import write_captures

START = dt.datetime(2026, 11, 23, 11, tzinfo=dt.UTC)
WINDOW = Window(START, START + dt.timedelta(minutes=10))
AGES = [41.0, 41.0, 41.0, 35.0, 35.0, 41.5, 50.0, 35.0, 41.0, 50.0] * 6
INCOME = [float(20 + i % 7) for i in range(len(AGES))]
PRED = [i % 2 for i in range(len(AGES))]


def target(constraints: dict[str, Any] | None = None) -> BiasTarget:
    empty = {"post_training_bias_metrics": {"facets": {}}}
    return BiasTarget((Facet("age"),), {}, constraints or empty,
                      PredictionSpec(inference_index=0), ("age", "income"), bootstrap=0)  # fmt: skip


def facet_values(result: BiasResult) -> list[str]:
    assert result.report is not None, result
    facets = result.report["post_training_bias_metrics"]["facets"]
    return [e["value_or_threshold"] for e in facets["age"]]


def by_format(tmp_path: Path, t: BiasTarget) -> dict[str, BiasResult]:
    hour = f"{START:%Y/%m/%d/%H}"
    (tmp_path / "csv" / hour).mkdir(parents=True)
    lines = ["age,income,prediction"] + [
        f"{a:g},{x:g},{p}" for a, x, p in zip(AGES, INCOME, PRED, strict=True)
    ]
    (tmp_path / "csv" / hour / "part-0.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "jsonl" / hour).mkdir(parents=True)
    (tmp_path / "jsonl" / hour / "part-0.jsonl").write_bytes(b"".join(
        orjson.dumps({"age": a, "income": x, "prediction": p}) + b"\n"
        for a, x, p in zip(AGES, INCOME, PRED, strict=True)
    ))  # fmt: skip
    (tmp_path / "parquet" / hour).mkdir(parents=True)
    pq.write_table(pa.table({"age": AGES, "income": INCOME, "prediction": PRED}),
                   tmp_path / "parquet" / hour / "part-0.parquet")  # fmt: skip
    inputs = [[f"{a:g}", f"{x:g}"] for a, x in zip(AGES, INCOME, strict=True)]
    write_captures(tmp_path / "captures", "credit", inputs, [[p] for p in PRED], START)

    async def run() -> dict[str, BiasResult]:
        out = {}
        for fmt in ("csv", "jsonl", "parquet"):
            ds = BatchDataset(f"file://{tmp_path / fmt}", partitioned=True,
                              prediction_column="prediction")  # fmt: skip
            store = LocalStore(str(tmp_path / fmt))
            out[fmt] = await run_bias_dataset(store, None, "credit", "AllTraffic", ds, t, WINDOW)
        captures = LocalStore(str(tmp_path / "captures"))
        out["captures"] = await run_bias(captures, None, "credit", "AllTraffic", "", t, WINDOW)
        return out

    return asyncio.run(run())


def test_one_vs_rest_facet_values_are_named_alike_in_every_format(tmp_path: Path) -> None:
    found = by_format(tmp_path, target())
    assert facet_values(found["captures"]) == ["41", "35", "50", "41.5"]  # most frequent first
    for fmt in ("csv", "jsonl", "parquet"):
        assert found[fmt].rows == len(AGES)
        assert found[fmt].report == found["captures"].report, fmt


def test_a_baseline_of_one_format_checks_a_window_of_another(tmp_path: Path) -> None:
    """Constraints from the CSV window's own report, tightened around the fair value: every
    format's window breaks them for the same facet values."""
    report = by_format(tmp_path / "first", target())["csv"].report
    assert report is not None
    constraints = suggest_constraints(report, sigmas=0, slack=0, min_margin=0)
    for _, entries in constraints["post_training_bias_metrics"]["facets"].items():
        for e in entries:
            for m in e["metrics"]:
                if "allowed_range" in m:
                    m["allowed_range"] = [-1e-9, 1e-9] if m["name"] != "DI" else [1.0, 1.0]
    found = by_format(tmp_path / "second", target(constraints))
    seen = {fmt: {v["facet_value"] for v in r.violations} for fmt, r in found.items()}
    assert seen["csv"] and seen["csv"] <= {"41", "35", "50", "41.5"}
    assert seen == {fmt: seen["csv"] for fmt in found}


def test_run_json_counts_what_was_read_in_one_shape(tmp_path: Path) -> None:
    """bias/run.json's captures_read: objects, bad_objects and bad_lines, batch or captured."""
    hour = f"{START:%Y/%m/%d/%H}"
    (tmp_path / "csv" / hour).mkdir(parents=True)
    (tmp_path / "csv" / hour / "a.csv").write_text("age,income,prediction\n41,20,1\n35,21,0\n")
    (tmp_path / "csv" / hour / "b.parquet").write_bytes(b"PAR1 not parquet")
    write_captures(tmp_path / "captures", "credit", [["41", "20"], ["35", "21"]], [[1], [0]],
                   START)  # fmt: skip
    (captured,) = (tmp_path / "captures").rglob("*.jsonl")
    captured.write_bytes(captured.read_bytes() + b"{not json\n")
    ds = BatchDataset(f"file://{tmp_path / 'csv'}", partitioned=True,
                      prediction_column="prediction")  # fmt: skip

    async def run() -> tuple[BiasResult, BiasResult]:
        batch = await run_bias_dataset(LocalStore(str(tmp_path / "csv")), None, "credit",
                                       "AllTraffic", ds, target(), WINDOW)  # fmt: skip
        live = await run_bias(LocalStore(str(tmp_path / "captures")), None, "credit",
                              "AllTraffic", "", target(), WINDOW)  # fmt: skip
        return batch, live

    batch, live = asyncio.run(run())
    assert (batch.rows, live.rows) == (2, 2)
    assert batch.document()["captures_read"] == {"objects": 2, "bad_objects": 1, "bad_lines": 0}
    assert live.document()["captures_read"] == {"objects": 1, "bad_objects": 0, "bad_lines": 1}
