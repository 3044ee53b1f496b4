"""analyzer.attribution.kernel_shap: exact Shapley values, sampling, background summaries."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from analyzer.attribution import (
    AttributionError,
    Background,
    KernelExplainer,
    explain_async,
    means,
    summarize,
)
from analyzer.attribution.kernel_shap import coalitions

Floats = np.ndarray[Any, np.dtype[np.float64]]


def exact_shapley(f: Any, x: Floats, bg: Floats, weights: Floats | None = None) -> Floats:
    """Shapley values by the definition: every coalition, background-averaged game."""
    m = len(x)
    w = np.full(len(bg), 1 / len(bg)) if weights is None else weights

    def v(s: tuple[int, ...]) -> float:
        z = bg.copy()
        z[:, list(s)] = x[list(s)]
        return float(w @ f(z))

    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            for s in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                phi[i] += weight * (v((*s, i)) - v(s))
    return phi


def nonlinear(x: Floats) -> Floats:
    return np.asarray(x[:, 0] * x[:, 1] + np.sin(x[:, 2]) + x[:, 3] ** 2 * x[:, 4])


def test_linear_model_closed_form() -> None:
    rng = np.random.default_rng(0)
    bg, x, w = rng.normal(size=(7, 5)), rng.normal(size=(4, 5)), rng.normal(size=5)
    explainer = KernelExplainer(bg)
    assert explainer.exact
    e = explainer.explain(lambda z: z @ w + 3.0, x)
    assert e.shap_values.shape == (4, 5, 1)
    # independent background: phi_i = w_i (x_i - E[x_i])
    np.testing.assert_allclose(e.shap_values[:, :, 0], w * (x - bg.mean(axis=0)), atol=1e-10)
    assert e.expected_value == pytest.approx([float(np.mean(bg @ w + 3.0))])


def test_nonlinear_model_exact_enumeration() -> None:
    rng = np.random.default_rng(1)
    bg, x = rng.normal(size=(6, 5)), rng.normal(size=(3, 5))
    e = KernelExplainer(bg).explain(nonlinear, x)
    for i in range(3):
        np.testing.assert_allclose(
            e.shap_values[i, :, 0], exact_shapley(nonlinear, x[i], bg), atol=1e-10
        )


def test_sampled_coalitions_converge_and_keep_efficiency() -> None:
    rng = np.random.default_rng(2)
    m = 10
    bg, x = rng.normal(size=(4, m)), rng.normal(size=(1, m))

    def f(z: Floats) -> Floats:
        return np.asarray(
            z[:, 0] * z[:, 1] * z[:, 2] + np.exp(z[:, 3] * z[:, 4] / 3) + z[:, 5:].prod(axis=1)
        )

    truth = exact_shapley(f, x[0], bg)
    errors = []
    for nsamples in (200, 1000):
        explainer = KernelExplainer(bg, nsamples=nsamples, seed=3)
        assert not explainer.exact
        phi = explainer.explain(f, x).shap_values[0, :, 0]
        # efficiency holds exactly whatever the sample: sum phi = f(x) - E f(background)
        assert phi.sum() == pytest.approx(f(x)[0] - f(bg).mean(), abs=1e-10)
        errors.append(np.abs(phi - truth).max())
    assert errors[1] < errors[0] and errors[1] < 0.1 * np.abs(truth).max()


def test_coalition_weights() -> None:
    rng = np.random.default_rng(0)
    z, w = coalitions(4, 100, rng)
    assert len(z) == 2**4 - 2 and w.sum() == pytest.approx(1.0)
    size = z.sum(axis=1)
    # Shapley kernel, normalised: (m-1) / (C(m,s) s (m-s))
    kernel = 3 / np.array([math.comb(4, s) * s * (4 - s) for s in size])
    np.testing.assert_allclose(w, kernel / kernel.sum())
    z, w = coalitions(12, 100, rng)  # sizes 1 and 11 enumerated (24), 76 sampled in pairs
    assert len(z) == 100 and w.sum() == pytest.approx(1.0)
    assert (z[:12].sum(axis=1) == 1).all()
    sampled = z[24:]
    assert (sampled[:38] == ~sampled[38:]).all()  # each with its complement
    assert ((sampled.sum(axis=1) > 1) & (sampled.sum(axis=1) < 11)).all()


def test_multi_output_logit_and_weighted_background() -> None:
    rng = np.random.default_rng(4)
    bg, x = rng.normal(size=(5, 3)), rng.normal(size=(2, 3))
    weights = np.array([1.0, 2.0, 3.0, 1.0, 1.0])

    def f(z: Floats) -> Floats:
        p = 1 / (1 + np.exp(-(z @ [1.0, -2.0, 0.5])))
        return np.stack([p, 1 - p], axis=1)

    e = KernelExplainer(Background.of(bg, weights), link="logit").explain(f, x)
    assert e.shap_values.shape == (2, 3, 2)

    def logit(p: Any) -> Any:
        return np.log(p / (1 - p))

    # log-odds units: the link applies to the background-averaged output (shap's link)
    averaged = weights / weights.sum() @ f(bg)
    np.testing.assert_allclose(e.expected_value, logit(averaged))
    np.testing.assert_allclose(e.shap_values.sum(axis=1), logit(f(x)) - logit(averaged), atol=1e-9)
    # the two outputs' log-odds are opposite, and so are their attributions
    np.testing.assert_allclose(e.shap_values[:, :, 0], -e.shap_values[:, :, 1], atol=1e-9)


def test_global_aggregations() -> None:
    rng = np.random.default_rng(5)
    bg, x, w = rng.normal(size=(3, 3)), rng.normal(size=(50, 3)), np.array([3.0, -1.0, 0.0])
    e = KernelExplainer(bg).explain(lambda z: z @ w, x)
    phi = e.shap_values[:, :, 0]
    np.testing.assert_allclose(e.global_values("mean_abs")[:, 0], np.abs(phi).mean(axis=0))
    np.testing.assert_allclose(e.global_values("median")[:, 0], np.median(phi, axis=0))
    np.testing.assert_allclose(e.global_values("mean_sq")[:, 0], (phi**2).mean(axis=0))
    assert e.global_values()[2, 0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(AttributionError, match="agg_method"):
        e.global_values("max")  # type: ignore[arg-type]


def test_plans_are_bounded_and_batched() -> None:
    rng = np.random.default_rng(6)
    bg, x, w = rng.normal(size=(4, 6)), rng.normal(size=(25, 6)), rng.normal(size=6)
    explainer = KernelExplainer(bg, max_plan_rows=1000)
    calls: list[int] = []

    def f(z: Floats) -> Floats:
        calls.append(len(z))
        return np.asarray(z @ w)

    e = explainer.explain(f, x)
    assert max(calls) <= 1000 and len(calls) == math.ceil(25 / explainer.batch_rows())
    np.testing.assert_allclose(e.shap_values[:, :, 0], w * (x - bg.mean(axis=0)), atol=1e-10)


async def test_explain_async_matches_sync() -> None:
    rng = np.random.default_rng(7)
    bg, x = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))

    async def score(rows: Floats) -> Floats:
        return nonlinear(rows)

    e = await explain_async(KernelExplainer(bg), x, score)
    np.testing.assert_allclose(e.shap_values, KernelExplainer(bg).explain(nonlinear, x).shap_values)


def test_backgrounds() -> None:
    rng = np.random.default_rng(8)
    data = np.vstack([rng.normal(-5, 0.1, (300, 2)), rng.normal(5, 0.1, (100, 2))])
    s = summarize(data, 2, seed=0)
    order = np.argsort(s.rows[:, 0])
    np.testing.assert_allclose(s.rows[order], [[-5, -5], [5, 5]], atol=0.05)
    np.testing.assert_allclose(s.weights[order], [0.75, 0.25])
    np.testing.assert_array_equal(summarize(data, 2, seed=0).rows, s.rows)  # seeded
    np.testing.assert_allclose(means(data).rows, data.mean(axis=0, keepdims=True))
    assert len(summarize(data[:3], 5).rows) == 3  # fewer rows than k: the rows themselves


def test_bad_inputs() -> None:
    with pytest.raises(AttributionError, match="missing or infinite"):
        KernelExplainer([[np.nan, 1.0]])
    explainer = KernelExplainer(np.zeros((2, 3)))
    with pytest.raises(AttributionError, match="shape"):
        explainer.plan(np.zeros((2, 4)))
    plan = explainer.plan(np.ones((1, 3)))
    with pytest.raises(AttributionError, match="one score"):
        explainer.solve(plan, np.zeros(3))
    with pytest.raises(AttributionError, match="at least 2"):
        KernelExplainer(np.zeros((1, 20)), nsamples=1)
