"""atheris harness: capture objects (analyzer.window.parse_records) from arbitrary bytes.

Contract: parse_records never raises; decode_object raises only ValueError.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports():
    from analyzer.window import Window, decode_object, parse_records

WINDOW = Window(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC))


def test_one_input(data: bytes) -> None:
    key = "e/v/2024/01/01/00/x.jsonl.gz" if data[:1] == b"z" else "e/v/2024/01/01/00/x.jsonl"
    records, stats = parse_records(key, data, WINDOW)
    assert stats.records == len(records)
    parse_records(key, data)
    with contextlib.suppress(ValueError):
        decode_object(key, data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
