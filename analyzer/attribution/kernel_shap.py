"""Model-agnostic Kernel SHAP in numpy, split so that the model can be scored over the network.

Kernel SHAP (Lundberg and Lee 2017, as the ``shap`` package's ``KernelExplainer`` does it) fits,
for each explained row x, a weighted linear regression of the model's output on coalitions
z in {0, 1}^m of features: a coalition's value is the model averaged over background rows b
with the features outside z taken from b, ``v(z) = link(sum_b w_b f(where(z, x, b)))``. With
the Shapley kernel ``pi(s) = (m - 1) / (C(m, s) s (m - s))`` for a coalition of s features,
the regression's coefficients are the Shapley values. As in ``shap``:

* The efficiency constraint ``sum_i phi_i = link(f(x)) - E`` is enforced exactly by
  eliminating the last feature from the regression (``E = link(sum_b w_b f(b))``, the
  expected value), so the empty and full coalitions need no weight.
* When all ``2^m - 2`` coalitions fit into ``nsamples``, all are enumerated and the values are
  exact Shapley values of the background-averaged game (for a linear model with independent
  features, ``phi_i = w_i (x_i - E[x_i])``). Otherwise coalition sizes are enumerated from the
  outside in (1 and m-1 features, then 2 and m-2, ...) while the whole size pair fits the
  budget, and the rest is sampled: sizes in proportion to their kernel weight, each sampled
  coalition together with its complement (paired sampling), sharing the remaining weight.

Design for a remote model. ``KernelExplainer.plan(X)`` builds every row the model has to score
for a batch of explained rows at once (background, the rows themselves, and ``rows x
coalitions x background`` synthetic rows); the caller scores them in one call, which can be
asynchronous and batched over HTTP (``explain_async``, ``client.ModelClient``); ``solve`` then
runs the regression. The coalitions are drawn once per plan and shared by its rows, so one
least-squares solve with many right-hand sides explains the whole batch. A plan's size is
bounded by ``max_plan_rows``.

``summarize`` (weighted k-means, seeded) and ``means`` turn training data into a small
background: synthetic rows grow with the background's size, so keep it to a few rows.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from analyzer.attribution.errors import AttributionError

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Link = Literal["identity", "logit"]
Aggregation = Literal["mean_abs", "median", "mean_sq"]
AGGREGATIONS: tuple[Aggregation, ...] = ("mean_abs", "median", "mean_sq")

DEFAULT_MAX_PLAN_ROWS = 200_000
LOGIT_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before the logit


def _matrix(x: Any, name: str, m: int | None = None) -> Floats:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise AttributionError(f"{name} must be numeric: {e}") from e
    if a.ndim == 1 and m is not None and a.shape[0] == m:
        a = a[None, :]
    if a.ndim != 2 or not a.shape[0] or (m is not None and a.shape[1] != m):
        want = f"(n, {m})" if m is not None else "(n, m) with n >= 1"
        raise AttributionError(f"{name} must be a 2-d array of shape {want}, got {a.shape}")
    if not np.isfinite(a).all():
        raise AttributionError(f"{name} has missing or infinite values; impute them first")
    return a


# --- Background ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Background:
    """Background rows and their weights (summing to 1)."""

    rows: Floats
    weights: Floats

    @classmethod
    def of(cls, rows: Any, weights: Any | None = None) -> Background:
        """Rows with equal weights, or the given (non-negative) weights normalised."""
        r = _matrix(rows, "background")
        w = np.ones(len(r)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(r),) or (w < 0).any() or w.sum() <= 0:
            raise AttributionError(f"background weights must be {len(r)} non-negative numbers")
        return cls(r, w / w.sum())


def means(data: Any) -> Background:
    """One background row: the column means of ``data``."""
    return Background.of(_matrix(data, "data").mean(axis=0, keepdims=True))


def summarize(data: Any, k: int, *, seed: int = 0, iterations: int = 100) -> Background:
    """A k-means summary of ``data``: k centres weighted by their cluster's share of rows.

    k-means++ seeding and Lloyd iterations, all distances as one (n, k) matrix per step;
    seeded, so a baseline's summary is reproducible. Like ``shap.kmeans``, minus its snapping
    of centres to observed values.
    """
    x = _matrix(data, "data")
    if k < 1:
        raise AttributionError(f"k must be at least 1, got {k}")
    if k >= len(x):
        return Background.of(x)
    rng = np.random.default_rng(seed)
    centres = x[[rng.integers(len(x))]]
    for _ in range(1, k):  # k-means++: next centre drawn in proportion to squared distance
        d2 = _sq_dist(x, centres).min(axis=1)
        total = d2.sum()
        pick = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centres = np.vstack([centres, x[pick]])
    labels = np.zeros(len(x), np.intp)
    for step in range(iterations):
        new = _sq_dist(x, centres).argmin(axis=1)
        if step and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    keep = counts > 0
    return Background.of(centres[keep], counts[keep])


def _sq_dist(x: Floats, c: Floats) -> Floats:
    return np.asarray(((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))


# --- Coalitions --------------------------------------------------------------------------------


def _enumerate(m: int, size: int) -> Bools:
    combos = np.array(list(itertools.combinations(range(m), size)), dtype=np.intp)
    z = np.zeros((len(combos), m), np.bool_)
    np.put_along_axis(z, combos, True, axis=1)
    return z


def coalitions(m: int, nsamples: int, rng: np.random.Generator) -> tuple[Bools, Floats]:
    """Coalition masks (c, m) and their regression weights (module docstring)."""
    if m < 2:
        return np.zeros((0, m), np.bool_), np.zeros(0)
    sizes = np.arange(1, m)
    kernel = (m - 1) / (sizes * (m - sizes))  # total kernel weight of each size
    kernel = kernel / kernel.sum()
    masks: list[Bools] = []
    weights: list[Floats] = []
    budget = nsamples
    left = np.ones(m - 1, np.bool_)  # sizes not yet enumerated (index s - 1)
    for s in range(1, m // 2 + 1):
        pair = [s] if s == m - s else [s, m - s]
        count = sum(math.comb(m, t) for t in pair)
        if count > budget:
            break
        for t in pair:
            masks.append(_enumerate(m, t))
            weights.append(np.full(math.comb(m, t), kernel[t - 1] / math.comb(m, t)))
            left[t - 1] = False
        budget -= count
    pairs = budget // 2
    if left.any() and pairs > 0:
        p = np.where(left, kernel, 0.0)
        drawn = rng.choice(sizes, size=pairs, p=p / p.sum())
        ranks = rng.random((pairs, m)).argsort(axis=1).argsort(axis=1)
        sampled = ranks < drawn[:, None]
        both = np.vstack([sampled, ~sampled])
        masks.append(both)
        weights.append(np.full(len(both), kernel[left].sum() / len(both)))
    if not masks:
        raise AttributionError(
            f"nsamples={nsamples} is too small for {m} features: at least 2 coalitions are needed"
        )
    return np.vstack(masks), np.concatenate(weights)


# --- Explaining ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Every row to score for one batch: background, the explained rows, then synthetic rows."""

    rows: Floats
    explained: int
    masks: Bools
    weights: Floats


@dataclass(frozen=True)
class Explanation:
    """Local SHAP values ``(rows, features, outputs)`` and the expected value per output."""

    shap_values: Floats
    expected_value: Floats

    def global_values(self, agg: Aggregation = "mean_abs") -> Floats:
        """Global attributions ``(features, outputs)``: Clarify's ``agg_method``."""
        v = self.shap_values
        if agg == "mean_abs":
            return np.asarray(np.abs(v).mean(axis=0))
        if agg == "median":
            return np.asarray(np.median(v, axis=0))
        if agg == "mean_sq":
            return np.asarray((v * v).mean(axis=0))
        raise AttributionError(f"unknown agg_method {agg!r}: expected one of {AGGREGATIONS}")

    @staticmethod
    def concat(parts: list[Explanation]) -> Explanation:
        return Explanation(np.concatenate([p.shap_values for p in parts]), parts[0].expected_value)


def _link(v: Floats, link: Link) -> Floats:
    if link == "identity":
        return v
    p = np.clip(v, LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.asarray(np.log(p / (1.0 - p)))


class KernelExplainer:
    """Kernel SHAP against a background; ``plan`` rows, score them, ``solve``.

    ``nsamples`` is the number of coalitions per explained row (Clarify's ``num_samples``;
    default ``2 m + 2048`` as in ``shap``); each coalition costs one model row per background
    row. ``link="logit"`` explains log-odds (Clarify's ``use_logit``).
    """

    def __init__(
        self,
        background: Background | Any,
        *,
        nsamples: int | None = None,
        link: Link = "identity",
        seed: int = 0,
        max_plan_rows: int = DEFAULT_MAX_PLAN_ROWS,
    ) -> None:
        self.background = (
            background if isinstance(background, Background) else Background.of(background)
        )
        self.m = self.background.rows.shape[1]
        self.nsamples = 2 * self.m + 2048 if nsamples is None else nsamples
        if self.nsamples < 2 and self.m > 1:
            raise AttributionError(f"nsamples must be at least 2, got {self.nsamples}")
        if link not in ("identity", "logit"):
            raise AttributionError(f"unknown link {link!r}: expected identity or logit")
        self.link: Link = link
        self.max_plan_rows = max_plan_rows
        self._rng = np.random.default_rng(seed)

    @property
    def exact(self) -> bool:
        """Whether every coalition is enumerated (the values are then exact)."""
        return bool(self.m < 2 or 2**self.m - 2 <= self.nsamples)

    def batch_rows(self) -> int:
        """Explained rows per plan so that a plan stays within ``max_plan_rows`` model rows."""
        c = min(self.nsamples, 2**self.m - 2) if self.m < 63 else self.nsamples
        per_row = 1 + max(c, 0) * len(self.background.rows)
        return max(1, (self.max_plan_rows - len(self.background.rows)) // per_row)

    def plan(self, x: Any) -> Plan:
        """All rows the model must score to explain the rows of ``x``."""
        xs = _matrix(x, "rows to explain", self.m)
        masks, weights = coalitions(self.m, self.nsamples, self._rng)
        bg = self.background.rows
        synthetic = np.where(masks[None, :, None, :], xs[:, None, None, :], bg[None, None, :, :])
        rows = np.concatenate([bg, xs, synthetic.reshape(-1, self.m)])
        return Plan(rows, len(xs), masks, weights)

    def solve(self, plan: Plan, scores: Any) -> Explanation:
        """SHAP values of a plan's explained rows from the model's ``scores`` of ``plan.rows``."""
        y = np.asarray(scores, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or len(y) != len(plan.rows):
            raise AttributionError(
                f"expected one score (or one row of scores) per planned row, {len(plan.rows)} "
                f"in all; got shape {y.shape}"
            )
        if not np.isfinite(y).all():
            raise AttributionError("the model returned missing or infinite scores")
        w_bg = self.background.weights
        r, q, c, k = len(w_bg), plan.explained, len(plan.masks), y.shape[1]
        expected = _link(w_bg @ y[:r], self.link)  # (k,)
        fx = _link(y[r : r + q], self.link)  # (q, k)
        total = fx - expected  # what the values of each row must add up to
        if self.m == 1:
            return Explanation(total[:, None, :], expected)
        synth = y[r + q :].reshape(q, c, r, k)
        v = _link(np.einsum("qcrk,r->qck", synth, w_bg), self.link) - expected
        z = plan.masks.astype(np.float64)
        a = z[:, :-1] - z[:, -1:]  # the last feature eliminated: sum phi = total exactly
        rhs = v - z[None, :, -1, None] * total[:, None, :]  # (q, c, k)
        sw = np.sqrt(plan.weights)
        lhs = a * sw[:, None]
        stacked = (rhs * sw[None, :, None]).transpose(1, 0, 2).reshape(c, q * k)
        phi, *_ = np.linalg.lstsq(lhs, stacked, rcond=None)  # (m - 1, q k)
        phi = phi.reshape(self.m - 1, q, k).transpose(1, 0, 2)
        last = total - phi.sum(axis=1)
        return Explanation(np.concatenate([phi, last[:, None, :]], axis=1), expected)

    def explain(self, f: Callable[[Floats], Any], x: Any) -> Explanation:
        """SHAP values of the rows of ``x`` for a local batch predict function ``f``."""
        xs = _matrix(x, "rows to explain", self.m)
        step = self.batch_rows()
        parts = []
        for start in range(0, len(xs), step):
            plan = self.plan(xs[start : start + step])
            parts.append(self.solve(plan, f(plan.rows)))
        return Explanation.concat(parts)


async def explain_async(
    explainer: KernelExplainer,
    x: Any,
    score: Callable[[Floats], Awaitable[Any]],
) -> Explanation:
    """``explain`` with an async scorer (a model server); numpy work runs in a worker thread.

    Per batch of explained rows: plan (thread), one ``score`` call over all its rows (the
    scorer batches and rate-limits requests), solve (thread). So the event loop never waits on
    numpy, and the model sees the synthetic rows of many explained rows at once.
    """
    xs = _matrix(x, "rows to explain", explainer.m)
    step = explainer.batch_rows()
    parts = []
    for start in range(0, len(xs), step):
        plan = await asyncio.to_thread(explainer.plan, xs[start : start + step])
        scores = await score(plan.rows)
        parts.append(await asyncio.to_thread(explainer.solve, plan, scores))
    return Explanation.concat(parts)
