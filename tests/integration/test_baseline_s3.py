"""``modeltap baseline`` reading a dataset from S3 (SeaweedFS, auth on) and writing back to it.

The CLI runs in a subprocess with only the ``AWS_*`` credentials of ``s3_env``; the endpoint,
region and path-style addressing come from ``--store-*`` flags or ``MODELTAP_ANALYZER_STORE_*``.
The data are small integers and quarters, and the cumulative row counts of the chunks are powers
of two, so every sum and every mean the profile combines chunk by chunk is exact and can be
compared with numpy bit for bit; fewer rows than the KLL sketch's k keep the sketches exact too,
so the whole statistics.json read from S3 equals the one read from local copies of the files.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer.cli.baseline import main
from harness.procs import PYTHON, REPO
from harness.seaweed import SeaweedS3

pytestmark = pytest.mark.integration

PLANS = np.array(["basic", "pro", "team"])


def _csv_part(path: Path, rows: int, missing: int, seed: int) -> dict[str, Any]:
    """A CSV part: ``age`` and ``income`` are empty on the first ``missing`` rows (so each
    part contributes a power of two of present values), ``plan`` on every 50th row."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    income = rng.integers(0, 400_000, rows) / 4  # quarters: exact in binary
    plan = PLANS[rng.integers(0, 3, rows)].astype(object)
    plan[::50] = None
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["age", "income", "plan"])
        for i in range(rows):
            if i < missing:
                w.writerow(["", "", plan[i] or ""])
            else:
                w.writerow([int(age[i]), float(income[i]), plan[i] or ""])
    return {"age": age[missing:], "income": income[missing:], "plan": plan}


def _parquet(path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    n = 1024
    amount = rng.integers(-4000, 4000, n) / 8
    items = rng.integers(1, 9, n)
    table = pa.table(
        {
            "amount": pa.array(amount),
            "items": pa.array(items),
            "plan": pa.array(PLANS[rng.integers(0, 3, n)]),
        }
    )
    pq.write_table(table, path, row_group_size=512)
    return {"amount": amount, "items": items}


def _upload(seaweed: SeaweedS3, bucket: str, root: Path) -> None:
    with contextlib.closing(seaweed.client()) as client:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                client.put_object(
                    Bucket=bucket, Key=f.relative_to(root).as_posix(), Body=f.read_bytes()
                )


def _get_json(seaweed: SeaweedS3, bucket: str, key: str) -> dict[str, Any]:
    with contextlib.closing(seaweed.client()) as client:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    doc: dict[str, Any] = json.loads(body)
    return doc


def _baseline_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTAP_")}
    full_env.update(env or {})
    return subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _features(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in doc["features"]}


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Local files laid out as the bucket will be: train/csv/ (3 parts, a _SUCCESS marker),
    train/csv-old/ (a sibling prefix that must not be read) and train/parquet/."""
    root = tmp_path / "bucket"
    (root / "train" / "csv").mkdir(parents=True)
    (root / "train" / "csv-old").mkdir()
    (root / "train" / "parquet").mkdir()
    # 260 + 256 + 512 rows; 4 + 0 + 0 missing numbers: 256, 512, 1024 present values.
    parts = [
        _csv_part(root / "train" / "csv" / f"part-{i:05d}.csv", rows, missing, seed=i)
        for i, (rows, missing) in enumerate([(260, 4), (256, 0), (512, 0)])
    ]
    (root / "train" / "csv" / "_SUCCESS").write_text("")
    (root / "train" / "csv-old" / "part-00000.csv").write_text("age,income,plan\n1,2,x\n")
    expected = {
        "csv": {
            "rows": 1028,
            "age": np.concatenate([p["age"] for p in parts]),
            "income": np.concatenate([p["income"] for p in parts]),
            "plan_present": sum(int(np.count_nonzero(p["plan"] != None)) for p in parts),  # noqa: E711
        },
        "parquet": _parquet(root / "train" / "parquet" / "data.parquet"),
    }
    return root, expected


def test_baseline_from_s3_prefix_matches_numpy_and_local(
    s3_env: SeaweedS3, s3_bucket: str, dataset: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, expected = dataset
    _upload(s3_env, s3_bucket, root)
    run = _baseline_cli(
        f"s3://{s3_bucket}/train/csv/",
        "-o",
        f"s3://{s3_bucket}/baseline/",
        "--store-endpoint-url",
        s3_env.endpoint_url,
        "--store-region",
        s3_env.region,
        "--store-path-style",
    )
    assert run.returncode == 0, run.stderr
    assert "profiled 1,028 rows x 3 columns" in run.stderr
    assert f"s3://{s3_bucket}/baseline/statistics.json" in run.stderr
    stats = _get_json(s3_env, s3_bucket, "baseline/statistics.json")
    cons = _get_json(s3_env, s3_bucket, "baseline/constraints.json")
    assert {f["name"] for f in cons["features"]} == {"age", "income", "plan"}

    exp = expected["csv"]
    assert stats["dataset"]["item_count"] == exp["rows"]
    features = _features(stats)
    assert [features[n]["inferred_type"] for n in ("age", "income", "plan")] == [
        "Integral",
        "Fractional",
        "String",
    ]
    for name in ("age", "income"):
        num = features[name]["numerical_statistics"]
        values = exp[name].astype(np.float64)
        assert num["common"] == {"num_present": 1024, "num_missing": 4}
        assert num["mean"] == float(np.mean(values))  # exact, not approximately
        assert num["sum"] == float(np.sum(values))
        assert (num["min"], num["max"]) == (float(values.min()), float(values.max()))
        assert num["std_dev"] == pytest.approx(float(np.std(values)), rel=1e-12)
    plan = features["plan"]["string_statistics"]
    assert plan["common"]["num_present"] == exp["plan_present"]
    assert plan["distinct_count"] == 3

    # The same files read from disk give the same statistics.json, sketches included.
    local_out = tmp_path / "local-baseline"
    assert main([str(root / "train" / "csv"), "-o", str(local_out), "-q"]) == 0
    assert json.loads((local_out / "statistics.json").read_text()) == stats
    assert json.loads((local_out / "constraints.json").read_text()) == cons


def test_parquet_prefix_with_store_settings_from_the_environment(
    s3_env: SeaweedS3, s3_bucket: str, dataset: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, expected = dataset
    _upload(s3_env, s3_bucket, root)
    run = _baseline_cli(
        f"s3://{s3_bucket}/train/parquet",
        "-o",
        f"s3://{s3_bucket}/out/parquet-baseline",
        "-q",
        env={
            "MODELTAP_ANALYZER_STORE_ENDPOINT_URL": s3_env.endpoint_url,
            "MODELTAP_ANALYZER_STORE_REGION": s3_env.region,
            "MODELTAP_ANALYZER_STORE_PATH_STYLE": "true",
        },
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    stats = _get_json(s3_env, s3_bucket, "out/parquet-baseline/statistics.json")
    assert stats["dataset"]["item_count"] == 1024
    features = _features(stats)
    exp = expected["parquet"]
    for name, kind in (("amount", "Fractional"), ("items", "Integral")):
        values = exp[name].astype(np.float64)
        assert features[name]["inferred_type"] == kind
        num = features[name]["numerical_statistics"]
        assert num["common"] == {"num_present": 1024, "num_missing": 0}
        assert num["mean"] == float(np.mean(values))
        assert num["sum"] == float(np.sum(values))
    assert features["plan"]["string_statistics"]["common"]["num_present"] == 1024

    local_out = tmp_path / "local-parquet"
    assert main([str(root / "train" / "parquet"), "-o", str(local_out), "-q"]) == 0
    assert json.loads((local_out / "statistics.json").read_text()) == stats


def test_store_errors_are_reported(
    s3_env: SeaweedS3, s3_bucket: str, dataset: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, _ = dataset
    _upload(s3_env, s3_bucket, root)
    flags = ["--store-endpoint-url", s3_env.endpoint_url, "--store-path-style"]
    run = _baseline_cli(f"s3://{s3_bucket}/nothing-here/", "-o", str(tmp_path / "out"), *flags)
    assert run.returncode == 1
    assert "no objects under this prefix" in run.stderr and "nothing-here" in run.stderr
    run = _baseline_cli(
        f"s3://{s3_bucket}/train/csv",
        "-o",
        str(tmp_path / "out"),
        *flags,
        env={"AWS_SECRET_ACCESS_KEY": "wrong"},
    )
    assert run.returncode == 1
    assert "modeltap baseline: error:" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()
