"""atheris harness: ground-truth label files (analyzer.groundtruth.records.parse_labels).

Contract: never raises; a bad line is counted under one of REASONS.
"""

from __future__ import annotations

import sys

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports():
    from analyzer.groundtruth.records import REASONS, parse_labels


def test_one_input(data: bytes) -> None:
    labels, stats = parse_labels(data, "k.jsonl")
    assert len(labels) == stats.labels
    assert set(stats.reasons) <= set(REASONS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
