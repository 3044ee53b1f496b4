"""Payloads are whatever clients sent: PayloadParser turns them into rows or counts a failure."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.capture_payload import INPUT, OUTPUT
from analyzer.payloads import ParseStats, PayloadParser
from tests.fuzz.strategies import FUZZ, records


def parse(side: str, recs: list[dict[str, Any]]) -> None:
    stats = ParseStats()
    table = PayloadParser(["a", "b", "c"], side=side).parse(recs, stats)
    assert isinstance(table, pa.Table)
    assert stats.records == len(recs)
    assert stats.rows == (table.num_rows if stats.rows else 0)
    assert sum(stats.reasons.values()) == stats.failed


def rec(side: str, data: str, encoding: str = "JSON") -> dict[str, Any]:
    return {"captureData": {side: {"data": data, "encoding": encoding}}}


@FUZZ
@given(st.lists(records(), max_size=6), st.sampled_from([INPUT, OUTPUT]))
@example([rec(INPUT, "[[[1, 2]]]")], INPUT)  # rows of equal length holding lists
@example([rec(INPUT, "AA==", "BASE64"), rec(INPUT, "[[[]]]")], INPUT)  # text beside list<null>
@example([rec(INPUT, "[[1, [2, 3]], [4, [5]]]")], INPUT)
@example([rec(INPUT, '{"inputs": [{"data": 5}]}')], INPUT)  # v2 tensor data not a list
@example([rec(INPUT, '{"inputs": [{"data": [1, 2], "shape": [{"a": 1}, 2]}]}')], INPUT)
@example([rec(INPUT, '{"inputs": [{"data": [1], "shape": 3}]}')], INPUT)
@example([rec(INPUT, '{"data": {"ndarray": 5}}')], INPUT)
@example([rec(INPUT, '{"inputs": {"a": [1], "b": 2}}')], INPUT)
@example([rec(INPUT, "[18446744073709551615, -1]")], INPUT)  # uint64 and int64 in one column
@example([rec(INPUT, '[{"a": 18446744073709551615}, {"a": -1}]')], INPUT)
@example([rec(INPUT, '[{"a": [1, "x"]}, {"a": {"b": 1}}]')], INPUT)
@example([rec(OUTPUT, '{"predictions": [[], [1]]}')], OUTPUT)
@example([rec(INPUT, "1,2\n3\n\x00"), rec(INPUT, '"a', "CSV")], INPUT)
@example([rec(INPUT, "\x80", "BASE64")], INPUT)  # non-ASCII base64 text (ValueError)
def test_any_capture_data_parses_or_is_counted(recs: list[dict[str, Any]], side: str) -> None:
    parse(side, recs)
