"""JSON Lines fields mixing numbers and strings: read as text, classified like a CSV column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzer import DataSource, InferredType, ReadOptions, build_baseline
from analyzer.profile import Profile, ProfileConfig
from analyzer.readers import read_chunks
from analyzer.statistics import profile_to_statistics


def _mixed_values(n: int = 2000, seed: int = 3) -> list[Any]:
    """99% ints, 1% strings (every 100th value), and a few nulls."""
    rng = np.random.default_rng(seed)
    values: list[Any] = [int(v) for v in rng.integers(-500, 5000, n)]
    for i in range(50, n, 100):
        values[i] = ["abc", "n/a", "12x"][i % 3]
    values[7] = values[1234] = None
    return values


def _write(tmp_path: Path, values: list[Any]) -> tuple[Path, Path]:
    """The same column as JSON Lines (with a numeric companion field) and as CSV."""
    jsonl = tmp_path / "d.jsonl"
    csv = tmp_path / "d.csv"
    with jsonl.open("w") as j, csv.open("w") as c:
        c.write("v,w\n")
        for i, v in enumerate(values):
            j.write(json.dumps({"v": v, "w": i}) + "\n")
            c.write(f"{'' if v is None else v},{i}\n")
    return jsonl, csv


def _profile(path: Path, threshold: float, block_bytes: int = 8 << 20) -> Profile:
    return build_baseline(
        DataSource([str(path)], ReadOptions(block_bytes=block_bytes)),
        ProfileConfig(mixed_type_threshold=threshold),
    )


def _without_sketch_bytes(doc: Any) -> Any:
    """statistics.json with the KLL sketches' serialized bytes dropped (same items, any order)."""
    if isinstance(doc, dict):
        return {k: _without_sketch_bytes(v) for k, v in doc.items() if k not in ("kll", "data")}
    if isinstance(doc, list):
        return [_without_sketch_bytes(v) for v in doc]
    return doc


def test_mixed_field_is_read_as_each_values_text(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text(
        '{"a": 1, "b": true}\n\n{"a": "abc", "b": "x"}\n{"a": 2.50, "b": 3}\n'
        '{"a": null}\n{"a": -1e3, "b": false}\n{"a": "1"}\n'
    )
    (chunk,) = read_chunks(str(f), f.name, ReadOptions())
    assert chunk.batch.column("a").to_pylist() == ["1", "abc", "2.50", None, "-1e3", "1"]
    assert chunk.batch.column("b").to_pylist() == ["true", "x", "3", None, "false", None]
    prof = build_baseline(DataSource([str(f)]))
    # [missing, integral, fractional, string]: the same rule as the text of a CSV column.
    assert prof.columns["a"].type_counts.tolist() == [1, 2, 2, 1]
    assert prof.columns["b"].type_counts.tolist() == [2, 1, 0, 3]


def test_text_that_looks_like_a_key_is_not_touched(tmp_path: Path) -> None:
    f = tmp_path / "k.jsonl"
    f.write_text('{"a": 1, "s": "{\\"a\\": 5, x"}\n{"s": ",\\"a\\":7", "a": "z"}\n')
    (chunk,) = read_chunks(str(f), f.name, ReadOptions())
    assert chunk.batch.column("a").to_pylist() == ["1", "z"]
    assert chunk.batch.column("s").to_pylist() == ['{"a": 5, x', ',"a":7']


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.02, InferredType.INTEGRAL), (0.0, InferredType.STRING)],
)
def test_mostly_integers_with_some_strings(
    tmp_path: Path, threshold: float, expected: InferredType
) -> None:
    values = _mixed_values()
    jsonl, csv = _write(tmp_path, values)
    prof = _profile(jsonl, threshold)
    strings = sum(isinstance(v, str) for v in values)
    ints = [v for v in values if isinstance(v, int)]
    assert strings == 20 and len(values) == 2000
    # 1% strings: within a 2% threshold the column stays Integral; SageMaker's rule (any string
    # makes a String) at 0.
    assert prof.inferred_type("v") is expected
    assert prof.columns["v"].type_counts.tolist() == [2, len(ints), 0, strings]
    assert prof.columns["v"].numeric.sum == sum(ints)
    if expected is InferredType.STRING:
        assert prof.columns["v"].strings is not None
        counts = prof.columns["v"].strings.counts_dict()
        assert counts["abc"] == 7 and str(ints[0]) in counts
        assert sum(counts.values()) == len(ints) + strings
    # The same data as CSV gives the same statistics.json.
    assert profile_to_statistics(prof) == profile_to_statistics(_profile(csv, threshold))


@pytest.mark.parametrize("threshold", [0.02, 0.0])
def test_many_blocks_match_csv(tmp_path: Path, threshold: float) -> None:
    """Blocks before, with and after the first string: exact counts and strings equal CSV's."""
    values = _mixed_values(20_000)
    for i in range(50, 8000, 100):  # the first 8000 lines (several blocks) hold only numbers
        values[i] = i
    jsonl, csv = _write(tmp_path, values)
    by_json = _profile(jsonl, threshold, block_bytes=16 << 10)
    by_csv = _profile(csv, threshold, block_bytes=16 << 10)
    assert len(list(read_chunks(str(jsonl), jsonl.name, ReadOptions(block_bytes=16 << 10)))) > 20
    a, b = profile_to_statistics(by_json), profile_to_statistics(by_csv)
    fa, fb = a["features"][0], b["features"][0]
    assert fa["inferred_type"] == fb["inferred_type"]
    assert fa["modeltap"]["type_counts"] == fb["modeltap"]["type_counts"]
    if threshold == 0.0:  # a String: its string statistics are complete, and equal CSV's
        assert fa["inferred_type"] == "String"
        assert fa["modeltap"]["strings"] == fb["modeltap"]["strings"]
        assert fa["string_statistics"] == fb["string_statistics"]
        assert "text_values_missed" not in fa["modeltap"]
    na, nb = by_json.columns["v"].numeric, by_csv.columns["v"].numeric
    assert (na.count, na.sum, na.min, na.max) == (nb.count, nb.sum, nb.min, nb.max)
    assert na.mean == pytest.approx(nb.mean, rel=1e-12)
    assert na.m2 == pytest.approx(nb.m2, rel=1e-12)
    assert _without_sketch_bytes(a)["dataset"] == _without_sketch_bytes(b)["dataset"]


def test_numbers_after_text_still_counted_as_text(tmp_path: Path) -> None:
    """A file of mixed values then a file of plain numbers: the String column's statistics
    count every value, as one CSV of both would."""
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "a.jsonl").write_text('{"v": "x"}\n{"v": 1}\n')
    (tmp_path / "j" / "b.jsonl").write_text('{"v": 1}\n{"v": 2}\n')
    csv = tmp_path / "d.csv"
    csv.write_text("v\nx\n1\n1\n2\n")
    by_json = build_baseline(DataSource([str(tmp_path / "j")]))
    strings = by_json.columns["v"].strings
    assert strings is not None and strings.counts_dict() == {"x": 1, "1": 2, "2": 1}
    # Two files are profiled one by one and merged; one CSV is profiled in one go. Everything
    # matches but the CPC sketch's bytes: a union serializes in another form, same estimate.
    assert _without_cpc(profile_to_statistics(by_json)) == _without_cpc(
        profile_to_statistics(build_baseline(DataSource([str(csv)])))
    )


def _without_cpc(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_cpc(v) for k, v in doc.items() if k != "cpc"}
    if isinstance(doc, list):
        return [_without_cpc(v) for v in doc]
    return doc
