"""The drift scenario's bar (docs/drift.md §5) at 100k rows a side: the statistical decision finds 6 of 6 drifts and
flags 0 of 19 undrifted features, from profiles (exact binned counts), Bonferroni over 25."""

from __future__ import annotations

import time

import pytest

from analyzer.baseline import profile
from analyzer.checks import Evaluation, evaluate
from analyzer.profile import Profile
from harness.drift_scenario import DRIFTED, WITH_MISSING, generate

N = 100_000


@pytest.fixture(scope="module")
def run() -> tuple[Evaluation, Profile, float]:
    started = time.monotonic()
    base = profile(generate(N, 1, drift=False))
    window = profile(generate(N, 2, drift=True), baseline=base)
    ev = evaluate(base, None, window)
    return ev, base, time.monotonic() - started


def test_finds_all_six_and_no_false_flags(run: tuple[Evaluation, Profile, float]) -> None:
    ev, _, _ = run
    assert len(ev.features) == 25
    flagged = {name for name, r in ev.features.items() if r.drift}
    assert flagged == DRIFTED
    assert all(r.decision is not None and r.decision.tested for r in ev.features.values())


def test_holm_decides_the_same(run: tuple[Evaluation, Profile, float]) -> None:
    _, base, _ = run
    window = profile(generate(N, 2, drift=True), baseline=base)
    holm = evaluate(base, None, window, correction="holm")
    assert {name for name, r in holm.features.items() if r.drift} == DRIFTED


def test_missing_values_are_tested_not_dropped(run: tuple[Evaluation, Profile, float]) -> None:
    ev, _, _ = run
    for name in WITH_MISSING:
        r = ev.features[name]
        assert r.measures is not None and 0 < r.measures.pvalue <= 1
        assert 0.98 < r.completeness < 1.0
    assert ev.features["normal_2"].drift  # the drifted feature among those with holes


def test_psi_and_fixed_distance_are_reported_not_decisive(
    run: tuple[Evaluation, Profile, float],
) -> None:
    ev, _, _ = run
    for r in ev.features.values():
        m = r.measures
        assert m is not None
        assert m.psi >= 0 and 0 <= m.js <= 1 and m.distance >= 0
    # The 0.1-sd shift passes SageMaker's 0.1 distance threshold; only the test sees it.
    assert ev.features["normal_0"].measures.distance < 0.1  # type: ignore[union-attr]
    assert ev.features["normal_0"].drift


def test_fast_enough(run: tuple[Evaluation, Profile, float]) -> None:
    _, _, seconds = run
    assert seconds < 20
