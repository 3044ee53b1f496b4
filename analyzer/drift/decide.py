"""Per-feature drift decisions from p-values, with a multiple-testing correction.

Each feature gets one test (numeric: ``ks``; categorical: ``chi_squared.homogeneity``), so a
window with 25 features runs 25 tests at once. Without a correction, 25 tests at 0.05 flag at
least one undrifted feature most of the time. The family-wise error rate is held at
``alpha`` (default 0.05) by:

* ``bonferroni`` (default): drift when ``p < alpha / k``, k the number of features with a p-value.
* ``holm``: sort the p-values ascending; reject while ``p_(i) < alpha / (k - i)`` (i from 0) and
  stop at the first failure. Uniformly more powerful than Bonferroni, same guarantee.

The adjusted p-value is reported (``min(1, k * p)`` for Bonferroni; Holm's step-down adjusted
p-value, made monotone), so that ``drift == (p_adjusted < alpha)``. A feature whose p-value is
NaN (no present values on a side, or fewer than two chi-square cells) is not tested: it gets
``drift=False`` with ``tested=False`` and does not count in k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Correction = Literal["bonferroni", "holm"]
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Decision:
    pvalue: float
    p_adjusted: float
    drift: bool
    tested: bool


def decide(
    pvalues: Mapping[str, float],
    alpha: float = DEFAULT_ALPHA,
    correction: Correction = "bonferroni",
) -> dict[str, Decision]:
    """Drift decisions for a family of per-feature p-values at family-wise level ``alpha``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    tested = {k: p for k, p in pvalues.items() if not math.isnan(p)}
    k = len(tested)
    adjusted: dict[str, float] = {}
    if correction == "bonferroni":
        adjusted = {name: min(1.0, p * k) for name, p in tested.items()}
    elif correction == "holm":
        running = 0.0
        for i, (name, p) in enumerate(sorted(tested.items(), key=lambda kv: kv[1])):
            running = max(running, min(1.0, (k - i) * p))
            adjusted[name] = running
    else:
        raise ValueError(f"correction must be bonferroni or holm, got {correction!r}")
    out = {}
    for name, p in pvalues.items():
        if name in adjusted:
            out[name] = Decision(p, adjusted[name], adjusted[name] < alpha, True)
        else:
            out[name] = Decision(p, math.nan, False, False)
    return out
