from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.groundtruth.records import REASONS, Labels, parse_labels, parse_line, read_labels
from modeltap.core.store.local import LocalStore


def gt(event_id: Any, data: Any, encoding: Any = "CSV") -> bytes:
    body: dict[str, Any] = {"data": data}
    if encoding is not None:
        body["encoding"] = encoding
    return orjson.dumps(
        {"groundTruthData": body, "eventMetadata": {"eventId": event_id}, "eventVersion": "0"}
    )


def test_sagemaker_csv_lines_parse_into_columns() -> None:
    data = b"\n".join([gt("a", "1"), gt("b", "0\n"), b"", gt("c", " cat ")]) + b"\n"
    labels, stats = parse_labels(data, "k.jsonl")
    assert labels.event_id.to_pylist() == ["a", "b", "c"]
    assert labels.label.to_pylist() == ["1", "0", "cat"]
    assert (stats.objects, stats.lines, stats.labels, stats.bad_lines) == (1, 3, 3, 0)
    assert stats.bad_keys == []


@pytest.mark.parametrize(
    ("data", "encoding", "label"),
    [
        ("1", None, "1"),  # encoding absent: CSV
        ("yes", "csv", "yes"),
        ("1", "JSON", "1"),  # a string holding JSON text, as capture payloads do
        ('"cat"', "JSON", "cat"),
        (1, "JSON", "1"),
        (0.25, "JSON", "0.25"),
        (True, "JSON", "1"),
        (False, "JSON", "0"),
        ("dog", "JSON", None),  # not JSON text
        ([1, 0, "a,b"], "JSON", '1,0,"a,b"'),  # a batch's labels become one CSV line
        (base64.b64encode(b"1\n").decode(), "BASE64", "1"),
        (base64.b64encode(b"0,1").decode(), "base64", "0,1"),
    ],
)
def test_encodings(data: Any, encoding: str | None, label: str | None) -> None:
    found = parse_line(gt("id", data, encoding))
    if label is None:
        assert found == "bad_label"
    else:
        assert found == ("id", label)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "bad_json"),
        (b'{"a": "\xff"}', "bad_json"),  # not UTF-8
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (orjson.dumps({"groundTruthData": {"data": "1"}}), "missing_event_id"),
        (orjson.dumps({"groundTruthData": {"data": "1"}, "eventMetadata": []}), "missing_event_id"),
        (gt("", "1"), "missing_event_id"),
        (gt(42, "1"), "missing_event_id"),
        (orjson.dumps({"eventMetadata": {"eventId": "a"}}), "missing_data"),
        (orjson.dumps({"eventMetadata": {"eventId": "a"}, "groundTruthData": "1"}), "missing_data"),
        (gt("a", None), "missing_data"),
        (gt("a", ""), "missing_data"),
        (gt("a", "   "), "missing_data"),
        (gt("a", "null", "JSON"), "missing_data"),
        (gt("a", "1", "XML"), "bad_encoding"),
        (gt("a", "1", 7), "bad_encoding"),
        (gt("a", 1, "CSV"), "bad_encoding"),
        (gt("a", "!!notbase64", "BASE64"), "bad_encoding"),
        (gt("a", base64.b64encode(b"\xff\xfe").decode(), "BASE64"), "bad_encoding"),
        (gt("a", "{", "JSON"), "bad_label"),
        (gt("a", {"label": 1}, "JSON"), "bad_label"),
        (gt("a", [[1], [0]], "JSON"), "bad_label"),
        (gt("a", [], "JSON"), "bad_label"),
    ],
)
def test_every_malformed_kind_is_counted_by_reason(line: bytes, reason: str) -> None:
    assert reason in REASONS
    assert parse_line(line) == reason
    labels, stats = parse_labels(gt("ok", "1") + b"\n" + line + b"\n", "obj.jsonl")
    assert labels.event_id.to_pylist() == ["ok"]
    assert stats.reasons == {reason: 1}
    assert stats.errors == [(2, reason)]
    assert (stats.lines, stats.labels, stats.bad_lines) == (2, 1, 1)
    assert stats.bad_keys == ["obj.jsonl"]


def test_gzip_object_and_damaged_object() -> None:
    labels, stats = parse_labels(gzip.compress(gt("a", "1")), "x.jsonl.gz")
    assert labels.label.to_pylist() == ["1"]
    labels, stats = parse_labels(b"\x1f\x8b\x08garbage", "x.jsonl.gz")
    assert len(labels) == 0
    assert (stats.bad_objects, stats.bad_keys) == (1, ["x.jsonl.gz"])


def test_errors_listed_are_capped_but_all_counted() -> None:
    data = b"\n".join([b"x"] * 50)
    _, stats = parse_labels(data, max_errors=3)
    assert stats.bad_lines == 50
    assert stats.errors == [(1, "bad_json"), (2, "bad_json"), (3, "bad_json")]


def test_last_write_wins_in_object_then_line_order() -> None:
    first = Labels.from_lists(["a", "b", "a"], ["1", "1", "2"])
    second = Labels.from_lists(["c", "a"], ["0", "3"])
    latest, overridden = Labels.concat([first, Labels.empty(), second]).latest()
    assert overridden == 2
    assert dict(zip(latest.event_id.to_pylist(), latest.label.to_pylist(), strict=True)) == {
        "a": "3", "b": "1", "c": "0",
    }  # fmt: skip
    assert latest.event_id.to_pylist() == ["b", "c", "a"]  # kept in write order
    same, none = Labels.from_lists(["x", "y"], ["1", "0"]).latest()
    assert none == 0 and same.event_id.to_pylist() == ["x", "y"]


async def test_read_labels_in_key_order_counts_bad_objects(tmp_path: Any) -> None:
    store = LocalStore(tmp_path)
    await store.put("e/v/2024/01/01/00/a.jsonl", gt("id", "0"), content_type="x")
    await store.put("e/v/2024/01/01/00/b.jsonl.gz", b"\x1f\x8bbad", content_type="x")
    await store.put("e/v/2024/01/01/01/c.jsonl", gt("id", "1") + b"\nbad", content_type="x")
    infos = [o async for o in store.list("e/v/")]
    labels, stats = await read_labels(store, infos)
    assert labels.label.to_pylist() == ["0", "1"]
    assert labels.latest()[0].label.to_pylist() == ["1"]
    assert (stats.objects, stats.bad_objects, stats.bad_lines, stats.labels) == (3, 1, 1, 2)
    assert stats.bad_keys == ["e/v/2024/01/01/00/b.jsonl.gz", "e/v/2024/01/01/01/c.jsonl"]
    # An object deleted between listing and reading is counted, not raised.
    await store.delete("e/v/2024/01/01/00/a.jsonl")
    labels, stats = await read_labels(store, infos)
    assert stats.bad_objects == 2 and labels.label.to_pylist() == ["1"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parser_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    labels, stats = parse_labels(data, "fuzz.jsonl")
    assert stats.objects == 1
    assert stats.labels == len(labels) <= stats.lines
    assert stats.bad_lines == sum(stats.reasons.values()) == stats.lines - stats.labels
    assert set(stats.reasons) <= set(REASONS)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=10,
    )
)
def test_parser_never_raises_on_arbitrary_json_shapes(value: Any) -> None:
    # stdlib json: it also writes what orjson refuses (NaN, integers beyond 64 bits).
    def gt_json(body: Any, meta: Any) -> bytes:
        return json.dumps({"groundTruthData": body, "eventMetadata": meta}).encode()

    lines = [
        json.dumps(value).encode(),
        gt_json({"data": value, "encoding": "JSON"}, {"eventId": "id"}),
        gt_json({"data": value, "encoding": "CSV"}, {"eventId": "id"}),
        gt_json({"data": json.dumps(value), "encoding": "JSON"}, {"eventId": "id"}),
        gt_json(value, {"eventId": "x"}),
        gt_json({"data": "1"}, value),
    ]
    for line in lines:
        found = parse_line(line)
        assert found in REASONS or (isinstance(found, tuple) and found[1])
