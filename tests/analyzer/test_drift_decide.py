"""Multiple-testing correction of per-feature p-values."""

from __future__ import annotations

import math

import pytest

from analyzer.drift.decide import decide


def test_bonferroni() -> None:
    p = {"a": 0.001, "b": 0.013, "c": 0.5, "d": 0.0125, "e": math.nan}
    d = decide(p, 0.05)
    assert {k for k, v in d.items() if v.drift} == {"a"}  # 4 tested: threshold 0.0125
    assert d["a"].p_adjusted == pytest.approx(0.004)
    assert d["b"].p_adjusted == pytest.approx(0.052) and d["b"].drift is False
    assert d["d"].p_adjusted == pytest.approx(0.05) and not d["d"].drift
    assert not d["e"].tested and not d["e"].drift and math.isnan(d["e"].p_adjusted)


def test_holm_is_step_down_and_monotone() -> None:
    p = {"a": 0.001, "b": 0.014, "c": 0.02, "d": 0.5}
    d = decide(p, 0.05, "holm")
    # 0.001 < 0.05/4; 0.014 < 0.05/3; 0.02 < 0.05/2; 0.5 > 0.05
    assert [d[k].drift for k in "abcd"] == [True, True, True, False]
    assert [d[k].p_adjusted for k in "abcd"] == pytest.approx([0.004, 0.042, 0.042, 0.5])
    assert not decide(p, 0.05)["c"].drift  # Bonferroni: 0.02 > 0.0125


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        decide({"a": 0.1}, 0.0)
    with pytest.raises(ValueError):
        decide({"a": 0.1}, 0.05, "fdr")  # type: ignore[arg-type]
    assert decide({}, 0.05) == {}
