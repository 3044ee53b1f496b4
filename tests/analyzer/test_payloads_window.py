from __future__ import annotations

import base64
import datetime as dt
import gzip

import orjson
import pytest

from analyzer.capture_payload import INPUT, OUTPUT
from analyzer.payloads import ParseStats, PayloadParser
from analyzer.window import Window, hour_prefix, list_window, parse_records
from modeltap.core.store.local import LocalStore

NAMES = ["a", "b", "c"]


def rec(data: str | bytes, ctype: str, encoding: str, side: str = INPUT) -> dict[str, object]:
    if isinstance(data, bytes):
        data = base64.b64encode(data).decode()
    return {
        "captureData": {
            side: {
                "observedContentType": ctype,
                "mode": "INPUT",
                "data": data,
                "encoding": encoding,
            }
        }
    }


def rows(table: object) -> list[dict[str, object]]:
    return table.to_pylist()  # type: ignore[attr-defined, no-any-return]


def test_csv_payloads_parse_together_keeping_raw_text() -> None:
    t = PayloadParser(NAMES).parse(
        [rec("1,2.5,x\n3,4,y", "text/csv", "CSV"), rec("5,,z\n", "text/csv", "CSV")]
    )
    assert rows(t) == [
        {"a": "1", "b": "2.5", "c": "x"}, {"a": "3", "b": "4", "c": "y"}, {"a": "5", "b": None, "c": "z"},
    ]  # fmt: skip


def test_ragged_csv_record_is_counted_not_fatal() -> None:
    stats = ParseStats()
    t = PayloadParser(NAMES).parse(
        [
            rec("1,2,3", "text/csv", "CSV"),
            rec("1,2\n3,4,5,6", "text/csv", "CSV"),
            rec("7,8,9", "text/csv", "CSV"),
        ],
        stats,
    )
    assert [r["a"] for r in rows(t)] == ["1", "7"]
    assert stats.reasons == {"bad_csv": 1}


@pytest.mark.parametrize(
    "doc",
    [
        {"instances": [[1, 2, "x"], [3, 4, "y"]]},
        [[1, 2, "x"], [3, 4, "y"]],
        {"instances": [{"a": 1, "b": 2, "c": "x"}, {"a": 3, "b": 4, "c": "y"}]},
        {
            "inputs": [
                {"name": "in", "shape": [2, 3], "datatype": "BYTES", "data": [1, 2, "x", 3, 4, "y"]}
            ]
        },
        {"inputs": {"a": [1, 3], "b": [2, 4], "c": ["x", "y"]}},
        {"data": {"names": ["a", "b", "c"], "ndarray": [[1, 2, "x"], [3, 4, "y"]]}},
    ],
)
def test_json_protocols_give_the_same_rows(doc: object) -> None:
    t = PayloadParser(NAMES).parse([rec(orjson.dumps(doc).decode(), "application/json", "JSON")])
    got = rows(t)
    assert [(r["a"], r["b"], r["c"]) for r in got] in (
        [(1, 2, "x"), (3, 4, "y")],
        [("1", "2", "x"), ("3", "4", "y")],
    )


def test_single_row_object_extra_columns_and_base64_json() -> None:
    one = rec('{"a": 1, "b": 2.5, "c": "q"}', "application/json", "JSON")
    extra = rec("[9, 8, 7, 6]", "application/json", "JSON")
    b64 = rec(b'{"instances": [[0, 0, "z"]]}', "application/json", "BASE64")
    binary = rec(b"\x89PNG", "image/png", "BASE64")
    stats = ParseStats()
    t = PayloadParser(NAMES).parse([one, extra, b64, binary], stats)
    got = rows(t)
    assert got[0]["b"] == 2.5
    assert got[1]["_c3"] == 6
    assert got[2]["c"] == "z"
    assert stats.reasons == {"unsupported_content_type": 1}


def test_outputs() -> None:
    p = PayloadParser(["label", "probability"], side=OUTPUT)
    t = p.parse(
        [
            rec('{"predictions": [{"label": "setosa", "probability": 0.9}]}', "application/json", "JSON", OUTPUT),
            rec("virginica,0.8\n", "text/csv", "CSV", OUTPUT),
            rec('{"outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [2]}]}',
                "application/json", "JSON", OUTPUT),
        ]
    )  # fmt: skip
    labels = sorted(str(r["label"]) for r in rows(t))
    assert labels == ["2", "setosa", "virginica"]


def test_window_hours_and_record_filtering() -> None:
    t0 = dt.datetime(2026, 1, 1, 22, 30, tzinfo=dt.UTC)
    w = Window(t0, t0 + dt.timedelta(hours=2))
    assert [h.hour for h in w.hours()] == [22, 23, 0]
    assert hour_prefix("ep", "v", w.hours()[2]) == "ep/v/2026/01/02/00/"
    lines = [
        {"captureData": {}, "eventMetadata": {"inferenceTime": "2026-01-01T22:29:59Z"}},  # before
        {"captureData": {}, "eventMetadata": {"inferenceTime": "2026-01-01T22:30:00Z"}},  # in
        {"captureData": {}, "eventMetadata": {"inferenceTime": "2026-01-02T00:30:00Z"}},  # end: out
        {"captureData": {}, "eventMetadata": {}},  # no time
        {"no": "capture"},
    ]
    data = b"\n".join(orjson.dumps(x) for x in lines) + b"\n{broken"
    records, stats = parse_records("k.jsonl", data, w)
    assert len(records) == 1
    assert (stats.outside_window, stats.bad_lines, stats.bad_keys) == (2, 3, ["k.jsonl"])
    _, gz = parse_records("k.jsonl.gz", gzip.compress(data)[:-10], w)
    assert gz.bad_objects == 1


async def test_list_window_only_lists_its_hours(tmp_path: object) -> None:
    store = LocalStore(tmp_path)  # type: ignore[arg-type]
    for key in ["ep/v/2026/01/01/21/x.jsonl", "ep/v/2026/01/01/22/y.jsonl", "ep/v/2026/01/02/00/z.jsonl",
                "ep/other/2026/01/01/22/n.jsonl"]:  # fmt: skip
        await store.put(key, b"{}\n", content_type="application/jsonlines")
    t0 = dt.datetime(2026, 1, 1, 22, 30, tzinfo=dt.UTC)
    found = await list_window(store, "ep", "v", Window(t0, t0 + dt.timedelta(hours=2)))
    assert [o.key for o in found] == ["ep/v/2026/01/01/22/y.jsonl", "ep/v/2026/01/02/00/z.jsonl"]
