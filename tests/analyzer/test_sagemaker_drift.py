"""Drift against a SageMaker-written baseline (KLL sketch only): the numbers say they are
approximate, and the KS bound includes the sketch's error."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

from analyzer.baseline import profile
from analyzer.checks import evaluate
from analyzer.numeric import kll_rank_error
from analyzer.statistics import profile_from_statistics, profile_to_statistics


def _sagemaker_doc(values: np.ndarray) -> dict[str, Any]:
    """statistics.json as SageMaker writes it: Deequ's KLL levels, no exact bins, no extras."""
    doc = copy.deepcopy(profile_to_statistics(profile({"x": values})))
    del doc["modeltap"]
    for f in doc["features"]:
        del f["modeltap"]
        sketch = f["numerical_statistics"]["distribution"]["kll"]["sketch"]
        del sketch["datasketches"]
        sketch["parameters"]["c"] = 0.64
    return doc


def test_drift_on_a_sagemaker_baseline_is_marked_approximate_with_the_sketch_error() -> None:
    rng = np.random.default_rng(11)
    base_values = rng.normal(0.0, 1.0, 200_000)
    base = profile_from_statistics(_sagemaker_doc(base_values))
    assert base.columns["x"].numeric.bins is not None  # rebuilt from the sketch
    checked = 0
    for shift in (0.0, 0.005, 0.02):
        window_values = rng.normal(shift, 1.0, 100_000)
        window = profile({"x": window_values}, baseline=base)
        d = evaluate(base, None, window).features["x"].measures
        assert d is not None
        assert d.exact is False
        assert d.ks_error_bound is not None and d.ks_error_bound >= kll_rank_error(2048)
        exact = ks_2samp(base_values, window_values).statistic
        assert abs(d.ks_statistic - exact) <= d.ks_error_bound
        checked += 1
    assert checked == 3
