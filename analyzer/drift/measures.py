"""The drift measures of one feature, a window's column against the baseline's: every measure
of ``analyzer.drift`` that applies to its type, and the p-value its decision is taken on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from analyzer.drift import chi_squared, jensen_shannon, ks, linf, psi, wasserstein
from analyzer.drift.inputs import binned, categories
from analyzer.inference import InferredType
from analyzer.profile import ColumnProfile


@dataclass
class DriftMeasures:
    """Every drift measure of one feature; None where a measure does not apply to its kind."""

    kind: Literal["numeric", "categorical"]
    n: int
    """Present values in the baseline."""
    m: int
    """Present values in the window."""
    linf_simple: float
    linf_robust: float
    distance: float
    """The L-infinity distance under the configured comparison_method (SageMaker's metric)."""
    psi: float
    js: float
    test: Literal["ks", "chi2_homogeneity"] | None
    pvalue: float
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ks_error_bound: float | None = None
    wasserstein: float | None = None
    wasserstein_normed: float | None = None
    wasserstein_error_bound: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    chi2_dof: int | None = None
    chi2_gof_statistic: float | None = None
    chi2_gof_pvalue: float | None = None
    new_share: float | None = None
    vanished_share: float | None = None
    exact: bool = True
    """False when the inputs were approximate: category cap exceeded, no bins (KLL only), or bins
    rebuilt from a SageMaker baseline's sketch."""


def measure(
    baseline: ColumnProfile,
    window: ColumnProfile,
    t: InferredType,
    comparison_method: linf.Method,
    *,
    psi_bins: int = psi.DEFAULT_BINS,
    psi_epsilon: float = psi.DEFAULT_EPSILON,
) -> DriftMeasures | None:
    """All drift measures of one feature of type ``t`` (None for Unknown)."""
    if t.is_numeric:
        a, b = baseline.numeric, window.numeric
        n, m = a.count, b.count
        if a.bins is None or b.bins is None:
            simple = linf.linf_numeric(a, b, "Simple")
            rob = linf.robust(simple, n, m)
            return DriftMeasures(
                "numeric",
                n,
                m,
                simple,
                rob,
                simple if comparison_method == "Simple" else rob,
                math.nan,
                math.nan,
                None,
                math.nan,
                exact=False,
            )
        c = binned(a, b)
        integral = t is InferredType.INTEGRAL
        rank_error = a.bins_rank_error + b.bins_rank_error
        k = ks.ks_test(c, integral=integral, rank_error=rank_error)
        w = wasserstein.wasserstein(a, b, integral=integral)
        rob = linf.robust(k.statistic, k.n, k.m)
        return DriftMeasures(
            "numeric",
            k.n,
            k.m,
            k.statistic,
            rob,
            k.statistic if comparison_method == "Simple" else rob,
            psi.psi_numeric(c, psi_bins, psi_epsilon),
            jensen_shannon.js_numeric(c),
            "ks",
            k.pvalue,
            ks_statistic=k.statistic,
            ks_pvalue=k.pvalue,
            ks_error_bound=k.error_bound,
            wasserstein=w.distance,
            wasserstein_normed=w.normed,
            wasserstein_error_bound=w.error_bound,
            exact=a.bins_exact and b.bins_exact,
        )
    if t is InferredType.STRING:
        cc = categories(baseline.strings, window.strings)
        simple = linf.linf_categorical(cc, "Simple")
        rob = linf.robust(simple, cc.n, cc.m)
        hom = chi_squared.homogeneity(cc)
        gof = chi_squared.goodness_of_fit(cc)
        return DriftMeasures(
            "categorical",
            cc.n,
            cc.m,
            simple,
            rob,
            simple if comparison_method == "Simple" else rob,
            psi.psi_categorical(cc, psi_epsilon),
            jensen_shannon.js_categorical(cc),
            "chi2_homogeneity",
            hom.pvalue,
            chi2_statistic=hom.statistic,
            chi2_pvalue=hom.pvalue,
            chi2_dof=hom.dof,
            chi2_gof_statistic=gof.statistic,
            chi2_gof_pvalue=gof.pvalue,
            new_share=hom.new_share,
            vanished_share=hom.vanished_share,
            exact=cc.exact,
        )
    return None
