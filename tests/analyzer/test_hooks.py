from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import orjson
import pytest

from analyzer import profile
from analyzer.hooks import Preprocessor, load_hook
from analyzer.job import run_window
from analyzer.payloads import ParseStats
from analyzer.targets import Target
from analyzer.window import Window
from modeltap.core.errors import ConfigError
from modeltap.core.store.local import LocalStore

SCRIPT = """
import orjson

def preprocess_handler(inference_record, logger):
    doc = orjson.loads(inference_record.endpoint_input.decoded())
    if doc.get("skip"):
        return []
    if doc.get("boom"):
        raise ValueError("bad record")
    return {"00": doc["x"] * 2, "01": inference_record.event_metadata.inference_id}

def postprocess_handler(run):
    return {"rows_doubled": run["rows"] * 2}
"""


def rec(
    doc: dict[str, object], rid: str = "i", when: str = "2026-03-01T10:00:05Z"
) -> dict[str, object]:
    return {
        "captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                          "data": orjson.dumps(doc).decode(), "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e", "inferenceId": rid, "inferenceTime": when},
    }  # fmt: skip


def test_preprocessor_maps_drops_and_counts_errors(tmp_path: Path) -> None:
    script = tmp_path / "pre.py"
    script.write_text(SCRIPT)
    pre = Preprocessor(load_hook(f"{script}:preprocess_handler"), ["x2", "rid"])
    stats = ParseStats()
    table = pre.parse(
        [rec({"x": 1}, "a"), rec({"skip": True}), rec({"boom": True}), rec({"x": 4}, "b")], stats
    )
    assert table.to_pylist() == [{"x2": 2, "rid": "a"}, {"x2": 8, "rid": "b"}]
    assert stats.reasons == {"dropped_by_preprocessor": 1, "preprocessor_error": 1}


def test_bad_hook_specs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected 'package\.module:function'"):
        load_hook("nofunction")
    with pytest.raises(ConfigError, match="cannot import"):
        load_hook("no_such_module_xyz:f")
    script = tmp_path / "pre.py"
    script.write_text(SCRIPT)
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        load_hook(f"{script}:nope")


async def test_job_uses_hooks(tmp_path: Path) -> None:
    script = tmp_path / "pre.py"
    script.write_text(SCRIPT)
    captures = LocalStore(tmp_path / "captures")
    lines = b"".join(orjson.dumps(rec({"x": float(i)}, f"r{i}")) + b"\n" for i in range(10))
    await captures.put("ep/v/2026/03/01/10/00-00-000-a.jsonl", lines, content_type="x")
    base = profile(
        {
            "x2": np.arange(100, dtype=float),
            "rid": np.array([f"r{i}" for i in range(100)], dtype=object),
        }
    )
    target = Target(
        "ep", "v", base, {},
        preprocessor=load_hook(f"{script}:preprocess_handler"),
        post_analytics=load_hook(f"{script}:postprocess_handler"),
    )  # fmt: skip
    t0 = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    result = await run_window(captures, None, target, Window(t0, t0 + dt.timedelta(hours=1)))
    assert result.rows == 10
    assert result.custom == {"rows_doubled": 20}
    statistics = result.sections["data"].statistics
    x2 = next(f for f in statistics["features"] if f["name"] == "x2")
    assert x2["numerical_statistics"]["sum"] == sum(2.0 * i for i in range(10))
