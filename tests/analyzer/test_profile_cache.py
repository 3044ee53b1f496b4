"""Each object profiled once: for random objects arriving over time and random windows moving
forward, an incremental run (cached partial profiles) gives the statistics.json, violations,
drift decisions and counts of a full re-read of the same window."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import profile
from analyzer.checks import suggest_constraints
from analyzer.data_quality.result import DataResult
from analyzer.job import run_window
from analyzer.profile_cache import ProfileCache
from analyzer.results import RunResult
from analyzer.statistics import profile_to_statistics
from analyzer.targets import Target
from analyzer.window import Window
from modeltap.core.store.local import LocalStore

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def target() -> Target:
    rng = np.random.default_rng(0)
    base = profile(
        {"a": rng.integers(0, 8, 400) / 4, "b": rng.choice(["x", "y", "z"], 400).tolist()}
    )
    return Target("ep", "v1", base, suggest_constraints(base))


TARGET = target()


def line(seconds: int, a: float, b: str) -> bytes:
    when = T0 + dt.timedelta(seconds=seconds)
    rec = {"captureData": {"endpointInput": {"data": f"{a},{b}", "encoding": "CSV",
                                             "observedContentType": "text/csv"}},
           "eventMetadata": {"inferenceTime": f"{when:%Y-%m-%dT%H:%M:%SZ}"}}  # fmt: skip
    return orjson.dumps(rec)


# An object: records over a few minutes from its start (seconds after T0), some lines bad.
OBJECT = st.tuples(
    st.integers(0, 150 * 60),
    st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 12), st.sampled_from("xyzw")),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)


def summary(r: RunResult) -> dict[str, Any]:
    data = r.sections.get("data")
    assert data is None or isinstance(data, DataResult)
    evaluation = data.evaluation if data is not None else None
    return {
        "status": r.status,
        "statistics": data.statistics if data is not None else None,
        "violations": [v.to_dict() for v in data.violations] if data is not None else [],
        "drift": {n: f.drift for n, f in (evaluation.features if evaluation else {}).items()},
        "read": (
            r.read.objects,
            r.read.records,
            r.read.outside_window,
            r.read.bad_objects,
            r.read.bad_lines,
            sorted(r.read.bad_keys),
        ),
        "parse": (r.parse.records, r.parse.rows, r.parse.failed, r.parse.reasons),
    }


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats up to rounding: partials merge in another order than a full read's objects
    (the moments' merge is exact in real numbers, not in floating point), and the distinct-count
    sketch's serialised state aside (its estimate, ``distinct_count``, is compared)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), path
        for k in a:
            if k != "cpc":  # the sketch's bytes depend on the merge order; its count does not
                assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


async def scenario(root: Path, objects: list[Any], length: int, steps: list[int]) -> int:
    captures = LocalStore(root / "captures")
    cache = ProfileCache(LocalStore(root / "cache"), max_entries=1000)
    end = T0 + dt.timedelta(minutes=length)
    written: set[int] = set()
    reused = 0
    for step in steps:
        end += dt.timedelta(minutes=step)
        for i, (start, recs, bad) in enumerate(objects):  # the sidecar uploads what is done
            last = start + max(s for s, _, _ in recs)
            if i in written or T0 + dt.timedelta(seconds=last) >= end:
                continue
            when = T0 + dt.timedelta(seconds=start)
            body = b"\n".join(line(start + s, a / 4, b) for s, a, b in recs)
            if bad:
                body += b"\n{torn"
            key = f"ep/v1/{when:%Y/%m/%d/%H}/{when:%M-%S}-{i:03d}.jsonl"
            await captures.put(key, body + b"\n", content_type="x")
            written.add(i)
        window = Window(end - dt.timedelta(minutes=length), end)
        incremental = await run_window(captures, None, TARGET, window, cache=cache)
        full = await run_window(captures, None, TARGET, window)
        assert_same(summary(incremental), summary(full))
        reused += cache.last.reused_objects + cache.last.skipped_outside
    return reused


@settings(max_examples=40, deadline=None)
@given(
    st.lists(OBJECT, min_size=1, max_size=8),
    st.sampled_from([20, 60]),
    st.lists(st.sampled_from([5, 5, 10, 30]), min_size=1, max_size=5),
)
def test_incremental_equals_full_reread(objects: list[Any], length: int, steps: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp), objects, length, steps))


def test_steady_state_reads_only_new_objects(tmp_path: Path) -> None:
    objects = [(m * 60, [(s, s % 9, "xyz"[s % 3]) for s in range(0, 60, 6)], False)
               for m in range(120)]  # fmt: skip
    reused = asyncio.run(scenario(tmp_path, objects, 60, [5] * 6))
    assert reused > 0
    index = orjson.loads(next((tmp_path / "cache").rglob("index.json")).read_bytes())
    assert index["groups"]  # partials kept, and bounded: only groups a later window can use
    start = T0 + dt.timedelta(minutes=60 + 30 - 60)
    for g in index["groups"]:
        firsts = [o["first"] for o in index["objects"] if o["group"] == g["id"]]
        assert min(firsts) >= start.timestamp()


def test_baseline_change_misses(tmp_path: Path) -> None:
    other = target()
    assert profile_to_statistics(other.baseline) == profile_to_statistics(TARGET.baseline)
    from analyzer.profile_cache import cache_context

    assert cache_context(other) == cache_context(TARGET)
    changed = Target("ep", "v1", profile({"a": [1.0, 2.0]}), {})
    assert cache_context(changed) != cache_context(TARGET)


def test_partials_of_an_old_baseline_are_deleted(tmp_path: Path) -> None:
    import os

    objects = [(m * 60, [(s, s % 9, "xyz"[s % 3]) for s in range(0, 60, 6)], False)
               for m in range(30)]  # fmt: skip
    asyncio.run(scenario(tmp_path, objects, 20, [5]))
    (old,) = list((tmp_path / "cache").rglob("index.json"))
    for f in old.parent.rglob("*.json"):
        os.utime(f, (0, 0))  # long unused
    global TARGET
    kept, TARGET = TARGET, Target("ep", "v1", profile({"a": [0.5, 1.0, 2.0]}), {})
    try:
        asyncio.run(scenario(tmp_path, objects, 20, [5]))
    finally:
        TARGET = kept
    assert [p.parent for p in (tmp_path / "cache").rglob("index.json")] != [old.parent]
    assert not list(old.parent.rglob("*.json"))


def test_objects_profiled_on_a_process_pool_are_cached(tmp_path: Path) -> None:
    from analyzer.engine import ProcessEngine
    from tests.analyzer.test_engine import assert_same_run

    captures = LocalStore(tmp_path / "captures")
    for m in range(0, 40, 2):
        body = b"\n".join(line(m * 60 + s, (s % 7) / 4, "xyz"[s % 3]) for s in range(0, 120, 5))
        when = T0 + dt.timedelta(minutes=m)
        asyncio.run(captures.put(f"ep/v1/{when:%Y/%m/%d/%H}/{m:02d}.jsonl", body + b"\n",
                                 content_type="x"))  # fmt: skip
    cache = ProfileCache(LocalStore(tmp_path / "cache"))
    engine = ProcessEngine(2, min_job_bytes=0)
    try:
        for end in (30, 35):
            window = Window(T0 + dt.timedelta(minutes=end - 30), T0 + dt.timedelta(minutes=end))
            pooled = asyncio.run(run_window(captures, None, TARGET, window, engine=engine,
                                            cache=cache))  # fmt: skip
            assert cache.last.profiled > 0 if end == 30 else cache.last.reused_objects > 0
            alone = asyncio.run(run_window(captures, None, TARGET, window))
            assert_same_run(pooled, alone)
    finally:
        engine.close()


def test_orphan_groups_are_deleted(tmp_path: Path) -> None:
    import os

    objects = [(m * 60, [(s, s % 9, "xyz"[s % 3]) for s in range(0, 60, 6)], False)
               for m in range(30)]  # fmt: skip
    asyncio.run(scenario(tmp_path, objects, 20, [5]))
    (index,) = list((tmp_path / "cache").rglob("index.json"))
    orphan = index.parent / "groups" / "0123456789abcdef.json"  # a lost replica's write
    orphan.write_bytes(b"{}")
    os.utime(orphan, (0, 0))
    kept = [p for p in (index.parent / "groups").iterdir() if p != orphan]
    asyncio.run(scenario(tmp_path, objects, 20, [5]))
    assert not orphan.exists()
    assert any(p.exists() for p in kept)


def test_a_window_holds_about_one_group_per_slice(tmp_path: Path) -> None:
    """Objects across a slice's end arrive a run after the rest of their slice; they join the
    slice's group instead of starting a group of their own, so a window holds about
    ``GROUPS_PER_WINDOW`` groups (kept in memory across runs), not two more per run."""
    from analyzer.profile_cache import _MEMORY_GROUPS, GROUPS_PER_WINDOW

    objects = [(m * 60 + 30, [(s, s % 9, "xyz"[s % 3]) for s in range(0, 60, 6)], False)
               for m in range(150)]  # fmt: skip
    asyncio.run(scenario(tmp_path, objects, 60, [5] * 12))
    index = orjson.loads(next((tmp_path / "cache").rglob("index.json")).read_bytes())
    assert 0 < len(index["groups"]) <= GROUPS_PER_WINDOW + 1 <= _MEMORY_GROUPS
    group_of = {o["key"]: o["group"] for o in index["objects"]}
    assert all(group_of[k] == g["id"] for g in index["groups"] for k in g["members"])


@settings(max_examples=8, deadline=None)
@given(
    st.lists(st.integers(0, 59), min_size=90, max_size=90),
    st.lists(st.sampled_from([5, 5, 10]), min_size=3, max_size=6),
)
def test_groups_joined_across_runs_equal_a_full_reread(
    offsets: list[int], steps: list[int]
) -> None:
    """A steady stream (an object a minute, each across a random second): objects across a
    slice's end join their slice's group a run later, and every run still equals a full read."""
    objects = [(m * 60 + off, [(s, (m + s) % 9, "xyz"[s % 3]) for s in range(0, 70, 7)], m % 17 == 0)
               for m, off in enumerate(offsets)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp), objects, 60, steps))
