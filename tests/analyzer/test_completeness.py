"""The completeness check: a significant rise in the missing share by default, SageMaker's threshold
when the user writes one."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from analyzer.baseline import profile
from analyzer.checks import evaluate
from analyzer.constraints import suggest_constraints
from analyzer.profile import Profile

MISSING = {"a": 0.20, "b": 0.05, "c": 0.005, "s": 0.10}


def _data(seed: int, n: int, missing: dict[str, float] = MISSING) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, share in missing.items():
        if name == "s":
            v = np.array(["x", "y", "z"], dtype=object)[rng.integers(0, 3, n)]
            v[rng.random(n) < share] = None
        else:
            v = rng.normal(0, 1, n)
            v[rng.random(n) < share] = np.nan
        out[name] = v
    out["full"] = rng.normal(0, 1, n)
    return out


@pytest.fixture(scope="module")
def base() -> Profile:
    return profile(_data(0, 50_000))


def _completeness(ev: Any) -> list[str]:
    return [
        v.feature_name for v in ev.violations if v.constraint_check_type == "completeness_check"
    ]


def test_suggested_completeness_is_quiet_on_clean_windows(base: Profile) -> None:
    cons = suggest_constraints(base)
    flagged = [
        (seed, _completeness(ev))
        for seed in range(1, 101)
        if _completeness(ev := evaluate(base, cons, profile(_data(seed, 10_000), baseline=base)))
    ]
    assert flagged == []


def test_suggested_completeness_flags_a_real_rise(base: Profile) -> None:
    cons = suggest_constraints(base)
    caught = 0
    for seed in range(1, 21):
        window = profile(_data(seed, 10_000, {**MISSING, "a": 0.25}), baseline=base)
        ev = evaluate(base, cons, window)
        caught += _completeness(ev) == ["a"]
        r = ev.features["a"]
        assert r.completeness_pvalue is not None
    assert caught == 20


def test_written_completeness_keeps_sagemaker_threshold(base: Profile) -> None:
    cons = copy.deepcopy(suggest_constraints(base))
    for f in cons["features"]:
        if f["name"] == "a":
            f["completeness"] = 0.8  # written by hand: a window below 80% present is a violation
    below = above = 0
    for seed in range(1, 41):
        ev = evaluate(base, cons, profile(_data(seed, 10_000), baseline=base))
        r = ev.features["a"]
        assert r.completeness_pvalue is None
        if r.completeness < 0.8 - 1e-6:
            below += 1
            assert "a" in _completeness(ev)
        else:
            above += 1
            assert "a" not in _completeness(ev)
    assert below and above
