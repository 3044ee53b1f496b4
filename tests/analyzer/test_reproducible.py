"""The same input and options give byte-identical statistics.json and constraints.json: run after
run, in this process, on a pool of local processes and on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzer.baseline import build_baseline, dumps
from analyzer.constraints import suggest_constraints
from analyzer.engine import DaskEngine, ProcessEngine
from analyzer.profile import Profile
from analyzer.sources import DataSource
from analyzer.statistics import profile_to_statistics


def _csv(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cols = [
        rng.normal(5, 2, rows).round(6),
        rng.standard_t(4, rows).round(6),
        rng.integers(0, 500, rows),
        np.array([f"c{i}" for i in range(40)])[rng.integers(0, 40, rows)],
    ]
    lines = ["a,b,n,s", *(",".join(map(str, r)) for r in zip(*cols, strict=True))]
    path.write_text("\n".join(lines) + "\n")


def _documents(prof: Profile) -> tuple[bytes, bytes]:
    return dumps(profile_to_statistics(prof)), dumps(suggest_constraints(prof))


def test_one_file_gives_the_same_bytes_every_time(tmp_path: Path) -> None:
    _csv(tmp_path / "train.csv", 120_000, 1)  # enough rows for the sketches to compact
    source = DataSource([str(tmp_path / "train.csv")])
    runs = {_documents(build_baseline(source)) for _ in range(3)}
    assert len(runs) == 1


@pytest.mark.timeout(180)
def test_local_and_dask_baselines_are_byte_identical(tmp_path: Path) -> None:
    for i in range(4):
        _csv(tmp_path / f"part-{i}.csv", 30_000, 10 + i)
    source = DataSource([str(tmp_path)])
    here = _documents(build_baseline(source))
    assert here == _documents(build_baseline(source))
    for workers in (1, 3):
        pooled = build_baseline(source, engine=ProcessEngine(workers, min_job_bytes=0))
        assert _documents(pooled) == here, f"{workers} local worker(s)"
    engine = DaskEngine("", 2)
    try:
        on_dask = build_baseline(source, engine=engine)
    finally:
        engine.close()
    assert _documents(on_dask) == here
