"""atheris harness: dataset files (analyzer.readers.read_chunks) as CSV, JSON Lines and Parquet.

The first byte picks the format (and gzip); the rest is the file. Contract: chunks, or DataError.
"""

from __future__ import annotations

import sys

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports():
    from analyzer.errors import DataError
    from analyzer.readers import ReadOptions, read_chunks

NAMES = ["x.csv", "x.jsonl", "x.parquet", "x.csv.gz", "x.jsonl.gz"]
OPTIONS = [ReadOptions(block_bytes=64), ReadOptions(header=False), ReadOptions(delimiter=";")]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    options = OPTIONS[(data[0] // len(NAMES)) % len(OPTIONS)]
    try:
        for _ in read_chunks(data[1:], name, options):
            pass
    except DataError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
