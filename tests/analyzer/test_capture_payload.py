"""The one payload reader under the window reader and the ground-truth merge."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from analyzer.capture_payload import OUTPUT, PayloadError, read_side, rows_from_json
from analyzer.groundtruth.predictions import PredictionSpec, read_predictions
from analyzer.payloads import ParseStats, PayloadParser


def record(payload: dict[str, Any] | None, eid: str = "e") -> dict[str, Any]:
    capture = {} if payload is None else {OUTPUT: payload}
    return {
        "captureData": capture,
        "eventMetadata": {"eventId": eid, "inferenceTime": "2026-01-01T00:00:00Z"},
    }


def payload(data: str, encoding: str, ctype: str) -> dict[str, str]:
    return {"observedContentType": ctype, "mode": "OUTPUT", "data": data, "encoding": encoding}


V2 = {"outputs": [{"name": "p", "shape": [2], "datatype": "FP64", "data": [0.25, 0.75]}]}
RECORDS = [
    record(payload("0.5\n0.7", "CSV", "text/csv"), "csv"),
    record(payload(orjson.dumps(V2).decode(), "JSON", "application/json"), "v2"),
    record(payload(base64.b64encode(b"0.9").decode(), "BASE64", "text/csv"), "b64"),
    record(payload("not base64!", "BASE64", "text/csv"), "bad"),
    record(payload(base64.b64encode(b"\x89PNG").decode(), "BASE64", "image/png"), "png"),
]


def test_the_window_reader_and_the_merge_read_the_same_payloads_alike() -> None:
    stats = ParseStats()
    table = PayloadParser(["p"], side=OUTPUT).parse(RECORDS, stats)
    values, _, merged = read_predictions(RECORDS, PredictionSpec())

    assert sorted(map(float, table.column("p").to_pylist())) == [0.25, 0.5, 0.7, 0.75, 0.9]
    assert sorted(map(float, values)) == [0.25, 0.5, 0.7, 0.75, 0.9]
    for reason in ("bad_encoding", "unsupported_content_type"):
        assert stats.reasons[reason] == 1
        assert merged.unparsed_predictions[reason] == 1


def test_read_side() -> None:
    assert read_side(RECORDS[2], OUTPUT) == ("csv", b"0.9")
    assert read_side(record(None), OUTPUT) is None
    assert read_side({"captureData": ["not", "a", "dict"]}, OUTPUT) is None
    for rec, reason in ((RECORDS[3], "bad_encoding"), (RECORDS[4], "unsupported_content_type")):
        with pytest.raises(PayloadError) as caught:
            read_side(rec, OUTPUT)
        assert caught.value.reason == reason


def test_serving_protocol_rows() -> None:
    assert rows_from_json(V2, output=True) == [{"p": 0.25}, {"p": 0.75}]
    assert rows_from_json({"instances": [[1, 2]]}, output=False) == [[1, 2]]
    seldon = {"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}}
    assert rows_from_json(seldon, output=False) == [{"a": 1, "b": 2}]
