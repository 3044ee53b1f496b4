"""Per-feature drift measures between a baseline profile and a window profiled against it.

One statistic per module, each a pure function of the two profiles' summaries (never raw data):

* ``ks``             Kolmogorov-Smirnov D and its p-value, from the exact quantile-anchored bins.
* ``psi``            Population Stability Index over 10 baseline-quantile bins or the categories.
* ``jensen_shannon`` Jensen-Shannon distance (base 2) over the fine bins or the categories.
* ``wasserstein``    Wasserstein-1 distance from the binned CDFs, with a stated error bound.
* ``chi_squared``    chi-square tests of category counts (goodness of fit and homogeneity).
* ``linf``           SageMaker's baseline_drift_check distance (linf_simple / linf_robust).
* ``measures``       every measure of one feature that applies to its type (``measure``).
* ``decide``         per-feature p-values to drift decisions with a multiple-testing correction.

Every measure is computed on *present* values only; missingness is a separate signal (the
completeness check), so a column with NaNs is still tested on the values it has. Inputs come from
``analyzer.drift.inputs``: the two numeric summaries' bin counts (which must share edges), or the
two categorical summaries' counts aligned on the union of categories.
"""

from __future__ import annotations
