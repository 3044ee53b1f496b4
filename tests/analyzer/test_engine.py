"""analyzer.engine and analyzer.scaleout: the tree merge, the in-process rule, picklable profiles,
a baseline on a process pool, and a Dask worker killed mid-run that changes nothing.

``assert_same_profile`` is the comparison every engine test uses: exact for counts, bins, min and
max; sums and moments to float rounding (the tree merges in another order than a sequential
fold); quantiles within the KLL sketch's rank error; category counts exact (below the cap).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pickle
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from analyzer.baseline import build_baseline
from analyzer.engine import DaskEngine, ProcessEngine, tree_reduce
from analyzer.job import run_window
from analyzer.numeric import kll_rank_error
from analyzer.profile import Profile
from analyzer.results import RunResult
from analyzer.scaleout import in_process
from analyzer.sources import DataSource
from analyzer.statistics import profile_from_statistics, profile_to_statistics
from analyzer.targets import Target
from analyzer.window import Window
from modeltap.core.store.local import LocalStore
from tests.analyzer.test_job import T0, baseline, capture_line


def assert_same_profile(a: Profile, b: Profile, *, same_edges: bool = True) -> None:
    assert a.item_count == b.item_count
    assert list(a.columns) == list(b.columns)
    for name, ca in a.columns.items():
        cb = b.columns[name]
        assert ca.type_counts.tolist() == cb.type_counts.tolist(), name
        na, nb = ca.numeric, cb.numeric
        assert (na.count, na.min, na.max, na.non_finite) == (
            nb.count,
            nb.min,
            nb.max,
            nb.non_finite,
        )
        assert na.sum == pytest.approx(nb.sum, rel=1e-12, abs=1e-9), name
        assert na.mean == pytest.approx(nb.mean, rel=1e-9, abs=1e-12), name
        assert na.m2 == pytest.approx(nb.m2, rel=1e-9, abs=1e-9), name
        if same_edges:  # a window against one baseline: the bins are exact counts
            assert (na.bins is None) == (nb.bins is None), name
            if na.bins is not None and nb.bins is not None:
                assert na.bins.tolist() == nb.bins.tolist(), name
        elif na.bins is not None and nb.bins is not None:  # edges from each side's sketch
            assert int(na.bins.sum()) == int(nb.bins.sum()) == na.count, name
        if na.count:
            eps = 2 * kll_rank_error(na.k)
            for r in (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
                q = na.kll.get_quantile(r)  # a repeated value spans a range of ranks
                lo, hi = nb.kll.get_rank(q, False), nb.kll.get_rank(q, True)
                assert lo - eps <= r <= hi + eps, (name, r)
        assert (ca.strings is None) == (cb.strings is None), name
        if ca.strings is not None and cb.strings is not None:
            assert ca.strings.counts_dict() == cb.strings.counts_dict(), name
            assert ca.strings.other_count == cb.strings.other_count, name
            assert ca.strings.distinct_count == cb.strings.distinct_count, name
            assert ca.text_values_missed == cb.text_values_missed, name


def assert_same_run(a: RunResult, b: RunResult) -> None:
    """Same status, counts and statistics.json (within the tolerances above)."""
    assert (a.status, a.rows, a.read, a.parse) == (b.status, b.rows, b.read, b.parse)
    da, db = a.sections["data"], b.sections["data"]
    assert da.statistics is not None and db.statistics is not None
    assert_same_profile(
        profile_from_statistics(da.statistics), profile_from_statistics(db.statistics)
    )
    assert [v.feature_name for v in da.violations] == [v.feature_name for v in db.violations]


def test_tree_reduce_keeps_order_and_is_balanced() -> None:
    assert tree_reduce([], lambda a, b: a + b) is None
    for n in range(1, 40):
        items = [(chr(65 + i % 26) + str(i), 0) for i in range(n)]
        out = tree_reduce(items, lambda a, b: (a[0] + b[0], max(a[1], b[1]) + 1))
        assert out is not None
        assert out[0] == "".join(s for s, _ in items)
        assert out[1] <= int(np.ceil(np.log2(n))) + 1  # depth of the merge tree


def test_profiles_pickle_with_their_sketches() -> None:
    prof = Profile.empty()
    prof.update({"x": np.arange(1000.0), "s": np.array(["a", "b", None, "c"] * 250, dtype=object)})
    back = pickle.loads(pickle.dumps(prof))
    assert orjson.dumps(profile_to_statistics(back)) == orjson.dumps(profile_to_statistics(prof))
    assert_same_profile(back.merge(prof), prof.merge(prof))


def test_small_jobs_stay_in_process() -> None:
    assert in_process(None, 1000, 1 << 40)
    assert in_process(ProcessEngine(1), 1000, 1 << 40)  # one worker: the threads of today
    assert in_process(ProcessEngine(2), 1000, 1 << 20)  # under 32 MiB
    assert in_process(ProcessEngine(2, min_job_bytes=0), 1, 10)  # one object
    assert not in_process(ProcessEngine(2), 1000, 1 << 30)
    assert not in_process(ProcessEngine(2, min_job_bytes=0), 2, 10)


class CountingPool(ProcessEngine):
    calls = 0

    def map_reduce(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().map_reduce(*args, **kwargs)


def _csv(path: Path, rows: int, seed: int, code: Any) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w") as f:
        f.write("x,n,city,code\n")
        for i in range(rows):
            f.write(
                f"{rng.normal(5, 2):.6f},{rng.integers(0, 50)},c{rng.integers(0, 30)},{code(i)}\n"
            )


def test_baseline_on_a_process_pool_matches_in_process(tmp_path: Path) -> None:
    """Both passes per file: bins counted against the merged first pass's edges, and a column
    whose first text value comes in a later file recounted as text over every file."""
    for i in range(4):
        late_text = (lambda j: f"k{j % 7}") if i == 2 else (lambda j: str(j % 5))
        _csv(tmp_path / f"part-{i}.csv", 3000, i, late_text)
    source = DataSource([str(tmp_path)])
    local = build_baseline(source)
    assert local.inferred_type("code").value == "String" and local.columns["code"].strings
    engine = CountingPool(2, min_job_bytes=0)
    pooled = build_baseline(source, engine=engine)
    assert engine.calls == 2, "both passes ran on the pool"
    assert_same_profile(local, pooled, same_edges=False)
    assert pooled.columns["code"].strings is not None
    assert pooled.columns["code"].strings.count == 12_000  # recounted, not only the late rows


async def _window(root: Path, objects: int, rows: int) -> tuple[LocalStore, Target, Window]:
    store = LocalStore(root)
    rng = np.random.default_rng(3)
    for o in range(objects):
        data = rng.normal(0.2, 1, (rows, 2)).round(4)
        lines = [capture_line(list(r), T0 + dt.timedelta(seconds=o * 60 + i // 100))
                 for i, r in enumerate(data)]  # fmt: skip
        if o == 1:
            lines.append(b"{torn\n")
        await store.put(f"ep/v1/2026/03/01/10/{o:03d}.jsonl", b"".join(lines), content_type="x")
    return store, baseline(), Window(T0, T0 + dt.timedelta(hours=1))


def _memory_tasks(dask_scheduler: Any) -> int:
    return sum(1 for ts in dask_scheduler.tasks.values() if ts.state == "memory")


@pytest.mark.timeout(120)
def test_a_dask_worker_killed_mid_run_changes_nothing(tmp_path: Path) -> None:
    store, target, window = asyncio.run(_window(tmp_path / "captures", 40, 1500))
    expected = asyncio.run(run_window(store, None, target, window))

    engine = DaskEngine("", 2)
    try:
        before = engine.client.run(os.getpid)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(
                asyncio.run, run_window(store, None, target, window, engine=engine)
            )
            deadline = time.monotonic() + 60
            while engine.client.run_on_scheduler(_memory_tasks) < 4:
                assert time.monotonic() < deadline and not running.done()
                time.sleep(0.01)
            assert not running.done(), "the run ended before a worker could be killed"
            os.kill(next(iter(before.values())), signal.SIGKILL)
            got = running.result(timeout=90)
        after = engine.client.run(os.getpid)
    finally:
        engine.close()
    assert set(after.values()) != set(before.values()), "the killed worker was replaced"
    assert got.error == ""
    assert_same_run(expected, got)
