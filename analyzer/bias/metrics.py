"""Post-training bias metrics, as SageMaker Clarify defines them, in Clarify's report layout.

(Over 400 lines on purpose: the fourteen metrics, GE included, share one set of per-facet
confusion counts and read as one table of formulas, below; split by kind, each part would need
the counts and the report layout of the others.)

``compute(facet_columns, facets, y_pred=..., y_true=...)`` returns an ``analysis.json``-like
document (docs/formats.md §7)::

    {"version": "1.0",
     "post_training_bias_metrics": {
         "label": "approved", "label_value_or_threshold": "1",
         "facets": {"sex": [{"value_or_threshold": "F",
                             "metrics": [{"name": "AD", "description": "Accuracy Difference (AD)",
                                          "value": 0.04}, ...]}]}},
     "modeltap": {"item_count": 2000}}

Groups: ``d`` (the disfavoured facet) is the rows whose facet column holds one of the facet's
``values``, or is above its ``threshold`` (Clarify's interval ``(threshold, max]``); ``a`` is
every other row. Rows whose facet is missing (None, NaN) are in neither. Without ``values`` and
``threshold`` each distinct value is its own ``d`` (one vs rest), at most ``MAX_FACET_VALUES``
of the most frequent, named by number when the column holds numbers (``"41"`` whether a file
held the text "41" or the number 41.0, ``"41.5"``). ``value_or_threshold`` is the configured value as text (``"F"``,
``"40"``), the key violations name, so it stays the same from one window to the next (Clarify
writes the interval ``(40, 90]``, whose upper end moves with the data).

Metrics (``'`` = predicted; n(1) observed positives, n'(1) predicted positives; rates of each
facet's confusion matrix)::

    DPPL = q'a - q'd                         DI   = q'd / q'a
    DCA  = na(1)/n'a(1) - nd(1)/n'd(1)       DCR  = nd(0)/n'd(0) - na(0)/n'a(0)
    RD   = TPRa - TPRd                       SD   = TNRd - TNRa
    DAR  = TPa/(TPa+FPa) - TPd/(TPd+FPd)     DRR  = TNd/(TNd+FNd) - TNa/(TNa+FNa)
    AD   = ACCa - ACCd                       TE   = FNd/FPd - FNa/FPa
    CDDPL = sum_i n_i DDPL_i / n,  DDPL_i = n'd,i(0)/n'_i(0) - n'd,i(1)/n'_i(1)  (per group i)
    FT   = (F+ - F-) / nd                    (k-NN flip test, see ``flip_test``)
    GE   = sum_i ((b_i/mean b)^alpha - 1) / (n alpha (alpha - 1)),  b_i = y'_i - y_i + 1

GE (generalized entropy, Clarify's default alpha = 2) is the inequality of the "benefit" b over
all rows: 0 for a false negative, 1 for a correct prediction, 2 for a false positive. It does not
depend on the facet (Clarify lists it under every facet value with the same value), only on the
rows that have a facet value; 0 is no inequality, undefined when every prediction is a false
negative (mean benefit 0). alpha = 1 is Theil's index, mean((b/mean b) ln(b/mean b)).

Positive values mean the facet ``a`` is favoured (DI: below 1). All but DPPL, DI, CDDPL and FT
need true labels (GE too); CDDPL needs ``group``, FT needs ``features``. Metrics that cannot be computed
are reported as Clarify reports a failed metric: ``"value": null`` and an ``"error"`` text.

Division, as Clarify's ``divide``: ``x/0`` is ``+inf`` for ``x > 0``, and a difference of two
infinite ratios is 0 (both sides equally extreme). One deliberate difference: ``0/0`` is
undefined (``null``, with the reason), where Clarify writes 0. A window without actual positives
in ``d`` says nothing about ``d``'s recall, and 0 would read as strong bias and raise a
violation. Inside CDDPL a group without predicted positives (or negatives) adds 0 to that term,
as Clarify does; CDDPL is undefined only when the whole dataset has none. Infinities are
written as Clarify's strings ``"Infinity"`` / ``"-Infinity"`` (JSON has no infinity);
``value_of`` reads them back.

``bootstrap=B`` adds, per metric, the standard deviation of B bootstrap replicates and the normal
bootstrap interval ``value +- z * sd`` (``"standard_deviation"``, ``"confidence_interval"``),
which ``constraints`` uses to tell drift from noise. Every metric but FT is a function of the
counts of the cells (group, facet, predicted, actual), so a bootstrap resample of the n rows is
exactly a multinomial draw of n over those cells: ``rng.multinomial(n, cell_shares, size=B)``
is the vectorised resample, O(B x cells) instead of a B x n index matrix, with the same
distribution. FT would need a k-NN per replicate; its deviation is instead that of the mean of
the per-row flips (+1, -1, 0) with the neighbours' votes held fixed, ``sd / sqrt(nd)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.bias.errors import BiasError

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

SECTION = "post_training_bias_metrics"
VERSION = "1.0"
MAX_FACET_VALUES = 50
DEFAULT_FT_MAX_ROWS = 5000
DEFAULT_GE_ALPHA = 2.0  # Clarify's
FT_NEIGHBOURS = 5
FT_MIN_NEIGHBOURS = 1
FT_SAMPLES_THRESHOLD = 9  # Clarify: 5 neighbours when facet a has more than 9 rows, else 1
_DISTANCE_BLOCK = 1 << 22  # distance-matrix entries per chunk of FT (32 MiB of float64)

DESCRIPTIONS = {
    "AD": "Accuracy Difference (AD)",
    "CDDPL": "Conditional Demographic Disparity in Predicted Labels (CDDPL)",
    "DAR": "Difference in Acceptance Rates (DAR)",
    "DCA": "Difference in Conditional Acceptance (DCA)",
    "DCR": "Difference in Conditional Rejection (DCR)",
    "DI": "Disparate Impact (DI)",
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DRR": "Difference in Rejection Rates (DRR)",
    "FT": "Flip Test (FT)",
    "GE": "Generalized Entropy (GE)",
    "RD": "Recall Difference (RD)",
    "SD": "Specificity Difference (SD)",
    "TE": "Treatment Equality (TE)",
}
METRIC_NAMES = tuple(sorted(DESCRIPTIONS))  # Clarify's order: by name
NEEDS_LABELS = frozenset({"AD", "DAR", "DCA", "DCR", "DRR", "GE", "RD", "SD", "TE"})
FACET_FREE = frozenset({"GE"})  # the same whatever the facet: defined with an empty facet too


@dataclass(frozen=True)
class Facet:
    """A sensitive attribute: ``values`` (categories) or ``threshold`` (``d`` is above it)."""

    name: str
    values: tuple[Any, ...] | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.values is not None and self.threshold is not None:
            raise BiasError(f"facet {self.name!r}: give values or a threshold, not both")
        if self.values is not None and not self.values:
            raise BiasError(f"facet {self.name!r}: values must not be empty")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise BiasError(f"facet {self.name!r}: threshold must be finite")

    @property
    def value_or_threshold(self) -> str:
        """The facet value as the report and violations key it."""
        if self.threshold is not None:
            return _render(self.threshold)
        return ",".join(_render(v) for v in self.values or ())


def _render(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --- Inputs ------------------------------------------------------------------------------------


def _missing(a: npt.NDArray[Any]) -> Bools:
    if a.dtype.kind == "f":
        return np.asarray(np.isnan(a), dtype=np.bool_)
    if a.dtype.kind == "O":
        missing = np.equal(a, np.array([None], dtype=object)) | np.not_equal(a, a)
        return np.asarray(missing, dtype=np.bool_)
    return np.zeros(len(a), np.bool_)


def is_in(column: npt.NDArray[Any], values: Sequence[Any]) -> Bools:
    """Rows holding one of ``values``: as numbers when both sides are numbers, else as text."""
    try:
        col = column.astype(np.float64)
        vals = np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return np.isin(column.astype(str), [str(v) for v in values])
    return np.isin(col, vals)


def _distinct(present: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], Ints]:
    """The distinct values of a facet column, named, and their counts. A column of numbers
    (numbers, or text that reads as numbers, as ``is_in`` matches them) is named by number:
    ``41`` for 41.0 and "41", so CSV text, JSON or Parquet numbers and captured payloads of
    the same rows give the same names; any other column by its text."""
    if present.dtype.kind in "iufOUS":
        try:
            numbers = present.astype(np.float64)
        except (TypeError, ValueError):
            pass
        else:
            uniq, counts = np.unique(numbers, return_counts=True)
            names = np.array([_render(float(v)) for v in uniq], dtype=object)
            return names, counts
    text, counts = np.unique(present.astype(str), return_counts=True)
    return text.astype(object), counts


def facet_groups(column: Any, facet: Facet, value: Any = None) -> tuple[Bools, Bools]:
    """``(d, valid)``: membership of the disfavoured group, and rows with a facet value."""
    col = np.asarray(column)
    valid = ~_missing(col)
    if facet.threshold is not None:
        try:
            x = col.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise BiasError(f"facet {facet.name!r} has a threshold but is not numeric: {e}") from e
        with np.errstate(invalid="ignore"):
            return (x > facet.threshold) & valid, valid
    values = facet.values if facet.values is not None else (value,)
    return is_in(col, values) & valid, valid


def _one_d(x: Any, name: str, n: int | None) -> npt.NDArray[Any]:
    a = np.asarray(x)
    if a.ndim != 1:
        raise BiasError(f"{name} must be one-dimensional, got shape {a.shape}")
    if n is not None and len(a) != n:
        raise BiasError(f"{name} has {len(a)} rows, expected {n}")
    return a


def predicted_positive(
    n: int,
    y_pred: Any | None,
    y_score: Any | None,
    positive_values: Sequence[Any],
    probability_threshold: float,
) -> Bools:
    """Predicted positives: ``y_pred`` among the positive values, else ``y_score >= threshold``."""
    if y_pred is not None:
        return is_in(_one_d(y_pred, "y_pred", n), positive_values)
    if y_score is None:
        raise BiasError("post-training bias needs predictions: pass y_pred or y_score")
    try:
        score = _one_d(y_score, "y_score", n).astype(np.float64)
    except (TypeError, ValueError) as e:
        raise BiasError(f"y_score must be numeric: {e}") from e
    return score >= probability_threshold


# --- Metrics from cell counts ------------------------------------------------------------------


def _divide(a: Any, b: Any) -> Floats:
    """Clarify's divide, vectorised: x/0 is +-inf; 0/0 is NaN (undefined, see module doc)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.true_divide(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def _diff(x: Floats, y: Floats) -> Floats:
    """x - y, where two equal infinities give 0 (Clarify) instead of NaN."""
    same_inf = np.isinf(x) & (x == y)
    with np.errstate(invalid="ignore"):
        out = x - y
    return np.where(same_inf, 0.0, out)


def cell_counts(
    d: Bools, valid: Bools, pred: Bools, true: Bools | None, group: Ints | None, groups: int
) -> Ints:
    """Counts of the valid rows in cells ``[group, facet d, predicted positive, actual positive]``."""
    code = (
        (group if group is not None else 0) * 8
        + d.astype(np.int64) * 4
        + pred.astype(np.int64) * 2
        + (true.astype(np.int64) if true is not None else 0)
    )
    counts = np.bincount(np.asarray(code)[valid], minlength=8 * groups)
    return counts.reshape(groups, 2, 2, 2)


def generalized_entropy(fn: Any, correct: Any, fp: Any, alpha: float = DEFAULT_GE_ALPHA) -> Floats:
    """GE of rows counted by benefit: ``fn`` with b = 0, ``correct`` with 1, ``fp`` with 2.

    ``sum_i ((b_i/mu)^alpha - 1) / (n alpha (alpha - 1))`` grouped by the three benefit values
    (``0^alpha = 0`` for alpha > 0); alpha = 1 is the limit, Theil's index. NaN when mu = 0.
    """
    fn, correct, fp = (np.asarray(v, np.float64) for v in (fn, correct, fp))
    n = fn + correct + fp
    mu = _divide(correct + 2.0 * fp, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = 1.0 / mu, 2.0 / mu  # b/mu of a correct row and of a false positive
        if alpha == 1.0:
            total = correct * r1 * np.log(r1) + fp * r2 * np.log(r2)
            out = total / n
        else:
            total = correct * r1**alpha + fp * r2**alpha
            out = (total / n - 1.0) / (alpha * (alpha - 1.0))
    return np.asarray(np.where((mu > 0) & (n > 0), out, np.nan), dtype=np.float64)


def from_counts(
    cells: Any, has_labels: bool, ge_alpha: float = DEFAULT_GE_ALPHA
) -> dict[str, Floats]:
    """Every count-based metric of cell tables ``[..., group, d, pred, true]`` (one per leading index)."""
    c = np.asarray(cells, np.float64)
    k = c.sum(axis=-4)  # over groups: [..., d, pred, true]
    out: dict[str, Floats] = {}
    tp_a, fp_a, fn_a, tn_a = k[..., 0, 1, 1], k[..., 0, 1, 0], k[..., 0, 0, 1], k[..., 0, 0, 0]
    tp_d, fp_d, fn_d, tn_d = k[..., 1, 1, 1], k[..., 1, 1, 0], k[..., 1, 0, 1], k[..., 1, 0, 0]
    n_a = tp_a + fp_a + fn_a + tn_a
    n_d = tp_d + fp_d + fn_d + tn_d
    q_a, q_d = _divide(tp_a + fp_a, n_a), _divide(tp_d + fp_d, n_d)
    out["DPPL"] = q_a - q_d
    out["DI"] = _divide(q_d, q_a)
    if has_labels:
        out["DCA"] = _diff(_divide(tp_a + fn_a, tp_a + fp_a), _divide(tp_d + fn_d, tp_d + fp_d))
        out["DCR"] = _diff(_divide(tn_d + fp_d, tn_d + fn_d), _divide(tn_a + fp_a, tn_a + fn_a))
        out["RD"] = _divide(tp_a, tp_a + fn_a) - _divide(tp_d, tp_d + fn_d)
        out["SD"] = _divide(tn_d, tn_d + fp_d) - _divide(tn_a, tn_a + fp_a)
        out["DAR"] = _divide(tp_a, tp_a + fp_a) - _divide(tp_d, tp_d + fp_d)
        out["DRR"] = _divide(tn_d, tn_d + fn_d) - _divide(tn_a, tn_a + fn_a)
        out["AD"] = _divide(tp_a + tn_a, n_a) - _divide(tp_d + tn_d, n_d)
        out["TE"] = _diff(_divide(fn_d, fp_d), _divide(fn_a, fp_a))
        correct = tp_a + tn_a + tp_d + tn_d
        out["GE"] = generalized_entropy(fn_a + fn_d, correct, fp_a + fp_d, ge_alpha)
    # CDDPL over groups: predicted [..., group, d, pred]; empty group denominators add 0.
    p = c.sum(axis=-1)
    rejected, accepted = p[..., 0].sum(axis=-1), p[..., 1].sum(axis=-1)
    dd = _share(p[..., 1, 0], rejected) - _share(p[..., 1, 1], accepted)
    n_g = p.sum(axis=(-1, -2))
    cddpl = _divide((n_g * dd).sum(axis=-1), n_g.sum(axis=-1))
    none = (rejected.sum(axis=-1) == 0) | (accepted.sum(axis=-1) == 0)
    out["CDDPL"] = np.where(none, np.nan, cddpl)
    empty = (n_a == 0) | (n_d == 0)
    return {
        name: v if name in FACET_FREE else np.where(empty, np.nan, v) for name, v in out.items()
    }


def _share(num: Floats, den: Floats) -> Floats:
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


# --- Flip test ---------------------------------------------------------------------------------


def flip_test(
    features: Any, d: Bools, pred: Bools, *, max_rows: int = DEFAULT_FT_MAX_ROWS, seed: int = 0
) -> float:
    """Counterfactual flip test FT = (F+ - F-) / nd; NaN when a facet is empty.

    Each ``d`` row gets the majority predicted label of its k nearest ``a`` rows (Euclidean
    over ``features``, which exclude facet and label; k = 5, or 1 when ``a`` has at most 9
    rows, as Clarify's k-NN). F+ counts ``d`` rows predicted negative whose neighbours were
    predicted positive, F- the reverse; so FT > 0 means ``d`` fares worse, like the other
    metrics. This is the sign of the Developer Guide's definition; the open-source
    ``smclarify`` code counts the two sets the other way round.

    Cost is O(nd x na x m): each facet is sampled down to ``max_rows`` rows (seeded, without
    replacement) and distances are computed in blocks of at most 4M entries, so memory stays
    bounded whatever the window size; nd is then the sampled count.
    """
    flips = _flips(features, d, pred, max_rows=max_rows, seed=seed)
    return float(flips.mean()) if len(flips) else math.nan


def _flips(features: Any, d: Bools, pred: Bools, *, max_rows: int, seed: int) -> Floats:
    """Per sampled ``d`` row: +1 (in F+), -1 (in F-) or 0; FT is their mean."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) != len(d):
        raise BiasError(f"features must be a 2-d array with {len(d)} rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise BiasError("features for the flip test must be finite numbers")
    rng = np.random.default_rng(seed)
    ia, id_ = np.flatnonzero(~d), np.flatnonzero(d)
    if not len(ia) or not len(id_):
        return np.zeros(0)
    if len(ia) > max_rows:
        ia = np.sort(rng.choice(ia, max_rows, replace=False))
    if len(id_) > max_rows:
        id_ = np.sort(rng.choice(id_, max_rows, replace=False))
    xa, xd, pa, pd_ = x[ia], x[id_], pred[ia], pred[id_]
    k = FT_NEIGHBOURS if len(ia) > FT_SAMPLES_THRESHOLD else FT_MIN_NEIGHBOURS
    sq_a = np.einsum("ij,ij->i", xa, xa)
    knn_pos = np.empty(len(xd), np.bool_)
    step = max(1, _DISTANCE_BLOCK // len(xa))
    for start in range(0, len(xd), step):
        block = xd[start : start + step]
        dist = sq_a[None, :] - 2.0 * block @ xa.T  # + |block|^2, constant per row
        nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
        knn_pos[start : start + step] = 2 * pa[nearest].sum(axis=1) > k
    return (~pd_ & knn_pos).astype(np.float64) - (pd_ & ~knn_pos).astype(np.float64)


# --- The report --------------------------------------------------------------------------------


def json_value(x: float) -> float | str | None:
    """A metric value for JSON: None when undefined, Clarify's strings for infinities."""
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(x)


def value_of(v: Any) -> float:
    """A metric value read back from JSON: NaN for null or anything not a number."""
    if isinstance(v, str):
        return {"Infinity": math.inf, "-Infinity": -math.inf}.get(v, math.nan)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v)


@dataclass(frozen=True)
class _Inputs:
    pred: Bools
    true: Bools | None
    group: Ints | None
    groups: int
    features: Floats | None
    ft_error: str | None = None
    ge_alpha: float = DEFAULT_GE_ALPHA


def _features(features: Any, n: int) -> tuple[Floats | None, str | None]:
    """The flip test's feature matrix, or why it cannot be used (FT alone then fails)."""
    x = np.asarray(features)
    if x.ndim != 2 or len(x) != n:
        raise BiasError(f"features must be a 2-d array with {n} rows, got shape {x.shape}")
    try:
        x = x.astype(np.float64)
    except (TypeError, ValueError):
        return None, "FlipTest does not support non-numeric columns"
    if not np.isfinite(x).all():
        return None, "FlipTest needs finite feature values; drop or impute missing ones first"
    return x, None


def _reason(name: str, value: float, cells: Ints, inputs: _Inputs) -> str | None:
    """Why a metric is undefined (Clarify's ``error`` text), None when it has a value."""
    if name in NEEDS_LABELS and inputs.true is None:
        return f"{name} needs the true labels (y_true)"
    if name == "CDDPL" and inputs.group is None:
        return "CDDPL needs a group variable"
    if name == "FT" and inputs.features is None:
        return inputs.ft_error or "FT needs the feature columns"
    if not math.isnan(value):
        return None
    if name == "GE" and cells.sum():
        return "GE is undefined when every prediction is a false negative (mean benefit 0)"
    k = cells.sum(axis=0)
    if k[1].sum() == 0:
        return "Facet set is empty"
    if k[0].sum() == 0:
        return "Negated facet set is empty"
    if name == "CDDPL":
        return "CDDPL needs both positive and negative predicted labels"
    return f"{name} is undefined on this data: a rate with no rows (0/0)"


def _interval(reps: Floats, value: float, z: float) -> tuple[float, list[Any]] | None:
    """(sd, normal interval) from bootstrap replicates; percentile when some are infinite."""
    defined = reps[~np.isnan(reps)]
    if not math.isfinite(value) or len(defined) < max(2, len(reps) // 2):
        return None
    finite = defined[np.isfinite(defined)]
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    if len(finite) < len(defined):  # a replicate hit x/0: no normal approximation there
        tail = (1.0 - (2.0 * NormalDist().cdf(z) - 1.0)) / 2.0
        lo, hi = np.quantile(defined, [tail, 1.0 - tail], method="inverted_cdf")
        return sd, [json_value(float(lo)), json_value(float(hi))]
    return sd, [value - z * sd, value + z * sd]


def _facet_report(
    d: Bools,
    valid: Bools,
    inputs: _Inputs,
    names: Sequence[str],
    bootstrap: int,
    z: float,
    rng: np.random.Generator,
    ft_max_rows: int,
    seed: int,
) -> list[dict[str, Any]]:
    cells = cell_counts(d, valid, inputs.pred, inputs.true, inputs.group, inputs.groups)
    point = {
        k: float(v) for k, v in from_counts(cells, inputs.true is not None, inputs.ge_alpha).items()
    }
    ft_sd = math.nan
    if "FT" in names and inputs.features is not None:
        keep = np.flatnonzero(valid)
        flips = _flips(
            inputs.features[keep], d[keep], inputs.pred[keep], max_rows=ft_max_rows, seed=seed
        )
        point["FT"] = float(flips.mean()) if len(flips) else math.nan
        if len(flips) > 1:
            ft_sd = float(flips.std(ddof=1) / math.sqrt(len(flips)))
    reps: dict[str, Floats] = {}
    n = int(cells.sum())
    if bootstrap and n:
        draws = rng.multinomial(n, cells.ravel() / n, size=bootstrap).reshape(-1, *cells.shape)
        reps = from_counts(draws, inputs.true is not None, inputs.ge_alpha)
    out = []
    for name in names:
        value = point.get(name, math.nan)
        entry: dict[str, Any] = {"name": name, "description": DESCRIPTIONS[name]}
        reason = _reason(name, value, cells, inputs)
        if reason is not None:
            entry.update(value=None, error=reason)
            out.append(entry)
            continue
        entry["value"] = json_value(value)
        interval = _interval(reps[name], value, z) if name in reps else None
        if name == "FT" and bootstrap and math.isfinite(ft_sd):
            interval = ft_sd, [value - z * ft_sd, value + z * ft_sd]
        if interval is not None:
            entry["standard_deviation"] = json_value(interval[0])
            entry["confidence_interval"] = interval[1]
        out.append(entry)
    return out


def compute(
    facet_columns: Mapping[str, Any],
    facets: Sequence[Facet],
    *,
    y_pred: Any | None = None,
    y_score: Any | None = None,
    probability_threshold: float = 0.5,
    y_true: Any | None = None,
    positive_values: Sequence[Any] = (1,),
    label: str = "label",
    group: Any | None = None,
    features: Any | None = None,
    metrics: Sequence[str] | None = None,
    bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    ft_max_rows: int = DEFAULT_FT_MAX_ROWS,
    ge_alpha: float = DEFAULT_GE_ALPHA,
) -> dict[str, Any]:
    """The post-training bias report of one dataset (baseline or window), Clarify's layout.

    ``facet_columns`` maps each facet's name to its column. ``positive_values`` are the
    positive label values (Clarify's ``label_values_or_threshold``), matched in ``y_true`` and
    ``y_pred`` as numbers when both sides are numbers (``"1"`` matches ``1``). ``features``
    (n x m numbers, without facet and label) enables FT; ``group`` enables CDDPL; ``ge_alpha``
    is GE's alpha (> 0; Clarify's 2).
    """
    names = list(METRIC_NAMES if metrics is None else metrics)
    unknown = sorted(set(names) - set(DESCRIPTIONS))
    if unknown:
        raise BiasError(f"unknown bias metrics {unknown}: expected some of {list(METRIC_NAMES)}")
    if bootstrap < 0 or not 0.0 < confidence < 1.0:
        raise BiasError(
            f"bootstrap must be >= 0 and confidence in (0, 1), got {bootstrap}, {confidence}"
        )
    if not positive_values:
        raise BiasError("positive_values must name at least one positive label")
    if not (math.isfinite(ge_alpha) and ge_alpha > 0):
        raise BiasError(f"ge_alpha must be a number > 0, got {ge_alpha}")
    columns = {name: np.asarray(col) for name, col in facet_columns.items()}
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise BiasError(
            f"facet columns must be non-empty and of one length, got {lengths or 'none'}"
        )
    n = lengths.pop()
    pred = predicted_positive(n, y_pred, y_score, positive_values, probability_threshold)
    true = is_in(_one_d(y_true, "y_true", n), positive_values) if y_true is not None else None
    group_codes, groups = None, 1
    if group is not None:
        uniq, inverse = np.unique(_one_d(group, "group", n).astype(str), return_inverse=True)
        group_codes, groups = inverse.astype(np.int64).reshape(-1), len(uniq)
    x, ft_error = None, None
    if features is not None and "FT" in names:
        x, ft_error = _features(features, n)
    inputs = _Inputs(pred, true, group_codes, groups, x, ft_error, ge_alpha)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    rng = np.random.default_rng(seed)
    report: dict[str, list[dict[str, Any]]] = {}
    for facet in facets:
        if facet.name not in columns:
            raise BiasError(f"no column for facet {facet.name!r}; columns: {sorted(columns)}")
        col = columns[facet.name]
        if facet.values is None and facet.threshold is None:
            uniq, counts = _distinct(col[~_missing(col)])
            order = np.argsort(-counts, kind="stable")[:MAX_FACET_VALUES]
            subsets = [(Facet(facet.name, values=(v,)), None) for v in uniq[order]]
        else:
            subsets = [(facet, None)]
        entries = report.setdefault(facet.name, [])
        for sub, value in subsets:
            d, valid = facet_groups(col, sub, value)
            metrics_out = _facet_report(
                d, valid, inputs, names, bootstrap, z, rng, ft_max_rows, seed
            )
            entries.append({"value_or_threshold": sub.value_or_threshold, "metrics": metrics_out})
    return {
        "version": VERSION,
        SECTION: {
            "label": label,
            "label_value_or_threshold": ",".join(_render(v) for v in positive_values),
            "facets": report,
        },
        "modeltap": {"item_count": n},
    }
