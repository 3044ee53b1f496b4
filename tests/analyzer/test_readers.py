"""Reading CSV / JSON Lines / Parquet from paths and the store, and the errors that name places."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer import DataError, DataSource, InferredType, ReadOptions, build_baseline
from analyzer.progress import Progress


def _baseline(path: Path | str, **kw: object) -> object:
    return build_baseline(DataSource([str(path)], ReadOptions(**kw)))  # type: ignore[arg-type]


def test_csv_with_header(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text('age,income,city,note\n30,1.5,"Paris",\n41,2.25,Berlin,"a, b"\n,3,Paris,x\n')
    prof = build_baseline(DataSource([str(f)]), allow_unknown=True)
    assert prof.item_count == 3
    assert prof.inferred_types() == {
        "age": InferredType.INTEGRAL,
        "income": InferredType.FRACTIONAL,
        "city": InferredType.STRING,
        "note": InferredType.STRING,
    }
    assert prof.columns["age"].type_counts.tolist() == [1, 2, 0, 0]
    assert prof.columns["note"].strings is not None
    assert prof.columns["note"].strings.counts_dict() == {"a, b": 1, "x": 1}


def test_csv_without_header_names_columns_like_sagemaker(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("1,a\n2,b\n")
    prof = build_baseline(DataSource([str(f)], ReadOptions(header=False)))
    assert list(prof.columns) == ["_c0", "_c1"] and prof.item_count == 2
    named = build_baseline(DataSource([str(f)], ReadOptions(header=False, column_names=("x", "y"))))
    assert list(named.columns) == ["x", "y"]


def test_csv_gzip_and_null_values(tmp_path: Path) -> None:
    f = tmp_path / "d.csv.gz"
    f.write_bytes(gzip.compress(b"v\n1\nNA\n3\n"))
    prof = build_baseline(DataSource([str(f)], ReadOptions(null_values=("", "NA"))))
    assert prof.inferred_type("v") is InferredType.INTEGRAL
    assert prof.columns["v"].type_counts.tolist() == [1, 2, 0, 0]


def test_jsonl_and_parquet_directory(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"x": 1, "s": "u"}\n\n{"x": 2.5}\n')
    pq.write_table(pa.table({"x": [3.0, None], "s": ["v", "w"]}), tmp_path / "b.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    prof = build_baseline(DataSource([str(tmp_path)]))
    assert prof.item_count == 4
    assert prof.inferred_type("x") is InferredType.FRACTIONAL
    assert prof.columns["x"].numeric.sum == pytest.approx(6.5)
    assert prof.columns["s"].type_counts.tolist() == [1, 0, 0, 3]


def test_store_prefix_with_many_objects(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    (root / "train").mkdir(parents=True)
    (root / "train2").mkdir()
    for i in range(3):
        (root / "train" / f"part-{i}.csv").write_text(f"v,w\n{i},x\n{i + 10},y\n")
    (root / "train2" / "other.csv").write_text("v,w\n99,z\n")
    src = DataSource([f"file://{root}/train"])
    assert len(src.files) == 3
    prof = build_baseline(src)
    assert prof.item_count == 6
    assert prof.columns["v"].numeric.sum == sum(range(3)) + sum(range(10, 13))


def test_progress_bar_shows_rows_rate_and_eta(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("v\n" + "\n".join(str(i) for i in range(5000)) + "\n")
    out = io.StringIO()
    src = DataSource([str(f)], ReadOptions(block_bytes=4096))
    build_baseline(
        src, progress=Progress(src.total_bytes, stream=out, enabled=True, interval_seconds=0)
    )
    text = out.getvalue()
    assert "pass 1/2" in text and "pass 2/2" in text
    assert "5,000 rows" in text and "rows/s" in text and "ETA" in text and "100.0%" in text


# ---- errors -------------------------------------------------------------------------------------


def test_empty_dataset(tmp_path: Path) -> None:
    for name, body in (("empty.csv", ""), ("header.csv", "a,b\n"), ("e.jsonl", "\n")):
        f = tmp_path / name
        f.write_text(body)
        with pytest.raises(DataError, match="holds no rows") as err:
            _baseline(f)
        assert name in str(err.value)


def test_ragged_csv_row_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    with pytest.raises(DataError) as err:
        _baseline(f)
    assert err.value.line == 3 and err.value.file == str(f)
    assert "ragged row: expected 3 fields like the header, got 2" in str(err.value)


def test_ragged_row_deep_in_a_big_file(tmp_path: Path) -> None:
    rows = ["a,b"] + [f"{i},{i}" for i in range(200_000)]
    rows[150_001] = "1,2,3"
    f = tmp_path / "big.csv"
    f.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        _baseline(f, block_bytes=1 << 16)  # many blocks, parsed by several threads
    assert err.value.line == 150_002


def test_non_utf8_csv_names_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(b"a,b\n1,x\n2,caf\xe9\n")
    with pytest.raises(DataError) as err:
        _baseline(f)
    assert (err.value.line, err.value.column) == (3, "b")
    assert "UTF-8" in str(err.value)


def test_non_utf8_jsonl_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b'{"a": "x"}\n{"a": "y"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError) as err:
        _baseline(f)
    assert err.value.line == 3 and "UTF-8" in str(err.value)


def test_jsonl_nested_and_scalar_values_named(tmp_path: Path) -> None:
    for body, line in (
        ('{"a": 1}\n\n{"a": "x"}\n{"a": {"b": 1}}\n', 4),
        ('{"a": [1]}\n{"a": 2}\n', 2),
    ):
        f = tmp_path / "m.jsonl"
        f.write_text(body)
        with pytest.raises(DataError, match="nested values") as err:
            _baseline(f)
        assert (err.value.file, err.value.line, err.value.column) == (str(f), line, "a")


def test_nested_json_rejected(tmp_path: Path) -> None:
    f = tmp_path / "n.jsonl"
    f.write_text('{"a": {"b": 1}}\n')
    with pytest.raises(DataError, match="nested") as err:
        _baseline(f)
    assert err.value.file == str(f) or str(f) in str(err.value)


def test_all_missing_column_named(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("a,b\n1,\n2,\n")
    with pytest.raises(DataError, match="every one of the 2 values is missing") as err:
        _baseline(f)
    assert err.value.column == "b" and str(f) in str(err.value)
    prof = build_baseline(DataSource([str(f)]), allow_unknown=True)
    assert prof.inferred_type("b") is InferredType.UNKNOWN


def test_missing_input_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        DataSource([str(tmp_path / "nope.csv")])
    f = tmp_path / "data.bin"
    f.write_bytes(b"x")
    with pytest.raises(DataError, match="--format"):
        _baseline(f)


def test_numbers_never_silently_made_from_text(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("v\n1\n 2\ninf\n0x10\n")
    prof = build_baseline(DataSource([str(f)]))
    assert prof.inferred_type("v") is InferredType.STRING
    assert prof.columns["v"].type_counts.tolist() == [0, 1, 0, 3]
    assert np.isclose(prof.columns["v"].numeric.sum, 1.0)


@pytest.mark.parametrize(
    ("uri", "parent", "prefix"),
    [
        ("s3://bucket/data/train", "s3://bucket/data", "train"),
        ("s3://bucket/train/", "s3://bucket", "train"),
        ("s3://bucket", "s3://bucket", ""),
        ("file:///srv/data", "file:///srv", "data"),
    ],
)
def test_store_uri_split_into_parent_and_prefix(uri: str, parent: str, prefix: str) -> None:
    from analyzer.sources import _split_uri

    assert _split_uri(uri) == (parent, prefix)
