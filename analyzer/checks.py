"""Constraint evaluation: a window profile against a baseline profile and its constraints.json.

``evaluate(baseline, constraints, window)`` is pure: no I/O, no clock. It returns an
``Evaluation``: the violations in constraint_violations.json form (``violations_json()``) and,
per feature, every drift measure of ``analyzer.drift`` plus the statistical decision, for the
monitoring job to export as metrics and write into its report.

The six checks, with SageMaker's names and semantics (docs/formats.md §4). Only present values
enter the distributions; missingness is measured by the completeness check alone.

* ``missing_column_check``: a constraints feature absent from the window. When the caller passes
  ``observed_columns`` (the names its reader saw), absent means not among them. Without it, a
  window profiled against the baseline holds every baseline column, so a column whose every value
  is missing in a non-empty window is taken as absent (a JSON key never sent looks exactly like
  that). A missing column gets no other check.
* ``extra_column_check``: a window column (or observed column) that is not a constraints feature.
* ``completeness_check`` (completeness is the share of non-null values of any type, as Deequ counts
  it: a value of the wrong type is the data-type check's business, not a missing one). Two
  semantics, told apart by the value constraints.json holds:

  - *The baseline's own share* (what ``suggest_constraints`` writes, rounded to 6 decimals; also
    when no constraints are given): the observed share of a sample is no floor a window of the same
    data stays above (half of all clean windows fall below it). The check is a one-sided test of a
    real rise in the missing share: with q_b, q_w the baseline's and the window's missing shares
    over n and m rows and ``COMPLETENESS_TOLERANCE`` t (1 percentage point), H0 is
    ``q_w <= q_b + t``; ``z = (q_w - q_b - t) / sqrt(q0 (1 - q0) / m + q_b (1 - q_b) / n)`` with
    ``q0 = min(1, q_b + t)`` (the window's and the baseline's sampling noise), p = P(Z >= z). The
    p-values of all features tested so are corrected for multiple testing at family level
    ``alpha`` like the drift tests (``analyzer.drift.decide``); a violation when the adjusted p is
    below alpha. So a violation means the missing share rose by more than t beyond what chance
    explains (at 10 k rows and a 20% share: a rise above about 2 points).
  - *Any other value* (written by hand): SageMaker's semantics, a violation when the window's
    share of present values is below it. A slack of 1e-6 absorbs the rounding to 6 decimals.
* ``data_type_check``: the share of the window's present values that match the expected type
  ("match": Integral for Integral; Integral or Fractional for Fractional; anything for String)
  is compared with the baseline's own match share (100% for a column that was all of its type).
  SageMaker's description strings ("Expected match: 100.0%. Observed: Only 99.7% of data is
  Integral") show that comparison; the role of ``datatype_check_threshold`` is undocumented, and
  here it is the tolerated drop: a violation when ``observed < expected - threshold``. With the
  threshold at 0, any drop is flagged, which reproduces the published 99.7%-against-100% output.
  Unknown features are not checked.
* ``baseline_drift_check``: numeric features compare the L-infinity distance of
  ``analyzer.drift.linf`` (``comparison_method`` Simple = linf_simple, Robust = linf_robust) with
  ``comparison_threshold``; String features compare the categorical L-infinity distance with
  ``categorical_comparison_threshold`` (default: ``comparison_threshold``), or, with
  ``categorical_drift_method: ChiSquared``, flag when the chi-square p-value is *below* that
  threshold (modeltap's choice, docs/formats.md §4; SageMaker does not document its comparison).
  The p-value is the homogeneity (two-sample) test's with every sparse cell pooled
  (``analyzer.drift.chi_squared``), not goodness of fit against the baseline's shares, which
  ignores the baseline's own sampling noise and flagged most clean high-cardinality columns; a
  column too sparse to test (fewer than 2 cells left after pooling) has no p-value and is never
  flagged. Distances are violations when strictly above the threshold. Off with
  ``perform_comparison: Disabled``.
* ``categorical_values_check``: for a String feature with ``string_constraints.domains``, the
  window's share of present values outside the domain exceeds the baseline's share (usually 0)
  by more than ``domain_content_threshold``. Values beyond the window's category cap are unknown
  and counted as outside (an upper bound).

Configuration: ``monitoring_config``; a feature's ``monitoringConfigOverrides`` replaces any of
its keys for that feature, flat (``"comparison_threshold": 0.2``) or nested under
``distribution_constraints`` as in ``monitoring_config``. ``evaluate_constraints: Disabled``
(globally or per feature) turns the checks off but still computes every measure; the decisions
of the drift tests do not depend on the constraints at all.

The statistical decision (``FeatureResult.decision``): numeric features are tested with the KS
test on the exact bins (``analyzer.drift.ks``), String features with the chi-square homogeneity
test (``analyzer.drift.chi_squared``), and the p-values of all tested features are corrected for
multiple testing at family level ``alpha`` (``analyzer.drift.decide``, Bonferroni by default).

Empty window (no rows): nothing can be measured, so only missing/extra column checks from
``observed_columns`` run; ``Evaluation.window_rows`` is 0 and the job decides what that means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

from scipy.stats import norm

from analyzer.constraints import suggest_constraints
from analyzer.drift import psi
from analyzer.drift.decide import DEFAULT_ALPHA, Correction, decide
from analyzer.drift.measures import DriftMeasures, measure
from analyzer.evaluation import CheckType, Evaluation, FeatureResult, Violation
from analyzer.inference import FRACTIONAL, INTEGRAL, InferredType, infer_type
from analyzer.monitoring_config import MonitoringConfig
from analyzer.profile import ColumnProfile, Profile

COMPLETENESS_SLACK = 1e-6
"""Absorbs constraints.json's rounding of completeness to 6 decimals."""
COMPLETENESS_TOLERANCE = 0.01
"""The rise in the missing share (absolute) a suggested completeness tolerates before its test."""


def _pct(x: float) -> str:
    return repr(float(x * 100.0))


def type_match(col: ColumnProfile, expected: InferredType) -> float:
    """Share of the present values whose type matches ``expected`` (NaN if none present)."""
    present = int(col.type_counts[1:].sum())
    if present == 0:
        return math.nan
    if expected is InferredType.INTEGRAL:
        ok = int(col.type_counts[INTEGRAL])
    elif expected is InferredType.FRACTIONAL:
        ok = int(col.type_counts[INTEGRAL] + col.type_counts[FRACTIONAL])
    else:
        ok = present
    return ok / present


def completeness_pvalue(
    base_present: int, base_rows: int, present: int, rows: int, tolerance: float
) -> float:
    """P(a window's missing share this high | it rose by at most ``tolerance``): see the docstring."""
    if rows == 0 or base_rows == 0:
        return math.nan
    q_b = 1.0 - base_present / base_rows
    q_w = 1.0 - present / rows
    q0 = min(1.0, q_b + tolerance)
    var = q0 * (1.0 - q0) / rows + q_b * (1.0 - q_b) / base_rows
    excess = q_w - q_b - tolerance
    if var <= 0.0:
        return 0.0 if excess > 0 else 1.0
    return float(norm.sf(excess / math.sqrt(var)))


def _suggested_completeness(expected: float, bcol: ColumnProfile | None, base_rows: int) -> bool:
    """Whether a constraints completeness is the baseline's own share (as suggested)."""
    if bcol is None or base_rows == 0:
        return False
    return round(bcol.num_present / base_rows, 6) == round(expected, 6)


def _present(col: ColumnProfile, t: InferredType) -> int:
    return col.numeric.count if t.is_numeric else col.num_present


def _completeness_violation(res: FeatureResult) -> Violation:
    assert res.expected_completeness is not None
    return Violation(
        res.name,
        "completeness_check",
        "Data completeness requirement is not met. Expected completeness: "
        f"{_pct(res.expected_completeness)}%. Observed: Only {_pct(res.completeness)}% "
        "of data is present.",
    )


def _drift_violation(
    name: str, t: InferredType, d: DriftMeasures, cfg: MonitoringConfig
) -> Violation | None:
    if t.is_numeric:
        value, limit = d.distance, cfg.comparison_threshold
        if not math.isnan(value) and value > limit:
            return Violation(
                name,
                "baseline_drift_check",
                f"Numerical distance: {value!r} exceeds numerical threshold: {limit!r}",
            )
        return None
    limit = cfg.categorical_threshold
    if cfg.categorical_drift_method == "ChiSquared":
        # The two-sample test: goodness of fit takes the baseline's shares as exact and rejects
        # clean windows far too often (``analyzer.drift.chi_squared``).
        p = d.chi2_pvalue
        if p is not None and not math.isnan(p) and p < limit:
            return Violation(
                name,
                "baseline_drift_check",
                f"Categorical drift p-value (ChiSquared): {p!r} is below categorical threshold: {limit!r}",
            )
        return None
    value = d.distance
    if not math.isnan(value) and value > limit:
        return Violation(
            name,
            "baseline_drift_check",
            f"Categorical distance: {value!r} exceeds categorical threshold: {limit!r}",
        )
    return None


def _outside_share(col: ColumnProfile, domain: set[str]) -> float:
    if col.strings is None:
        return math.nan
    counts = col.strings.counts_dict()
    total = sum(counts.values()) + col.strings.other_count
    if total == 0:
        return math.nan
    outside = sum(c for v, c in counts.items() if v not in domain) + col.strings.other_count
    return outside / total


def evaluate(
    baseline: Profile,
    constraints: Mapping[str, Any] | None,
    window: Profile,
    *,
    observed_columns: Collection[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    correction: Correction = "bonferroni",
    psi_bins: int = psi.DEFAULT_BINS,
    psi_epsilon: float = psi.DEFAULT_EPSILON,
    job_overrides: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Every check of ``constraints`` (default: suggested from the baseline) on ``window``.

    ``job_overrides`` (monitoring_config keys) apply to this run on top of constraints.json and
    under each feature's overrides: the SDK's ``categorical_drift_method`` environment variable,
    for example, is ``{"categorical_drift_method": "ChiSquared"}``.
    """
    cons = constraints if constraints is not None else suggest_constraints(baseline)
    base_cfg = MonitoringConfig.from_constraints(cons).updated(job_overrides or {})
    features = list(cons.get("features") or [])
    known = {str(f["name"]) for f in features}
    rows = window.item_count
    results: dict[str, FeatureResult] = {}
    violations: list[Violation] = []
    pvalues: dict[str, float] = {}
    complete_pvalues: dict[str, float] = {}

    for feat in features:
        name = str(feat["name"])
        t = InferredType(feat.get("inferred_type", "Unknown"))
        cfg = base_cfg.updated(feat.get("monitoringConfigOverrides") or {})
        check = cfg.evaluate_constraints
        wcol = window.columns.get(name)
        bcol = baseline.columns.get(name)
        if observed_columns is not None:
            absent = name not in observed_columns
        else:
            absent = wcol is None or (rows > 0 and wcol.num_present == 0)
        exp_complete = feat.get("completeness")
        expected_match: float | None = None
        if bcol is not None and t is not InferredType.UNKNOWN:
            expected_match = type_match(bcol, t)
        res = FeatureResult(
            name=name,
            baseline_type=str(t),
            window_type=None,
            rows=rows,
            present=0,
            completeness=math.nan,
            expected_completeness=None if exp_complete is None else float(exp_complete),
            type_match=math.nan,
            expected_type_match=expected_match,
        )
        results[name] = res
        if absent:
            if check and (rows > 0 or observed_columns is not None):
                res.violations.append(
                    Violation(
                        name,
                        "missing_column_check",
                        f"Column {name!r} of the baseline constraints is missing from the current dataset.",
                    )
                )
            continue
        if wcol is None or rows == 0:
            continue
        res.window_type = str(infer_type(wcol.type_counts))
        res.present = _present(wcol, t)
        res.completeness = (
            wcol.num_present / rows
        )  # non-null share, as Deequ and the baseline count it
        res.type_match = type_match(wcol, t) if t is not InferredType.UNKNOWN else math.nan

        if bcol is not None:
            res.measures = measure(
                bcol, wcol, t, cfg.comparison_method, psi_bins=psi_bins, psi_epsilon=psi_epsilon
            )
            if res.measures is not None:
                pvalues[name] = res.measures.pvalue  # NaN when untestable: tested=False
        if not check:
            continue
        if res.expected_completeness is not None:
            if _suggested_completeness(res.expected_completeness, bcol, baseline.item_count):
                assert bcol is not None
                p = completeness_pvalue(
                    bcol.num_present,
                    baseline.item_count,
                    wcol.num_present,
                    rows,
                    COMPLETENESS_TOLERANCE,
                )
                res.completeness_pvalue = p
                complete_pvalues[name] = p
            elif res.completeness < res.expected_completeness - COMPLETENESS_SLACK:
                res.violations.append(_completeness_violation(res))
        if not math.isnan(res.type_match):
            expected = (
                1.0 if expected_match is None or math.isnan(expected_match) else expected_match
            )
            if res.type_match < expected - cfg.datatype_check_threshold - 1e-12:
                res.violations.append(
                    Violation(
                        name,
                        "data_type_check",
                        f"Data type match requirement is not met. Expected data type: {t}, "
                        f"Expected match: {_pct(expected)}%. Observed: Only {_pct(res.type_match)}% "
                        f"of data is {t}.",
                    )
                )
        if cfg.perform_comparison and res.measures is not None:
            v = _drift_violation(name, t, res.measures, cfg)
            if v is not None:
                res.violations.append(v)
        domains = (feat.get("string_constraints") or {}).get("domains")
        if t is InferredType.STRING and domains is not None:
            domain = {str(d) for d in domains}
            w_out = _outside_share(wcol, domain)
            b_out = _outside_share(bcol, domain) if bcol is not None else 0.0
            b_out = 0.0 if math.isnan(b_out) else b_out
            if not math.isnan(w_out) and w_out - b_out > cfg.domain_content_threshold + 1e-12:
                res.violations.append(
                    Violation(
                        name,
                        "categorical_values_check",
                        f"Data value requirement is not met. Expected: at most "
                        f"{_pct(b_out + cfg.domain_content_threshold)}% of data outside the "
                        f"{len(domain)} domain values. Observed: {_pct(w_out)}% of data is outside "
                        "the domain.",
                    )
                )

    for name, dec in decide(complete_pvalues, alpha, correction).items():
        res = results[name]
        res.completeness_decision = dec
        if dec.drift:
            res.violations.insert(0, _completeness_violation(res))
    for res in results.values():
        violations.extend(res.violations)
    if base_cfg.evaluate_constraints:
        seen = list(observed_columns) if observed_columns is not None else list(window.columns)
        for name in seen:
            if name not in known:
                violations.append(
                    Violation(
                        name,
                        "extra_column_check",
                        f"Column {name!r} of the current dataset is not in the baseline constraints.",
                    )
                )

    decisions = decide(pvalues, alpha, correction)
    for name, dec in decisions.items():
        results[name].decision = dec
    return Evaluation(base_cfg, alpha, correction, rows, results, violations)


def evaluate_violations(
    baseline: Profile, constraints: Mapping[str, Any], window: Profile
) -> list[dict[str, str]]:
    """The violations only, as constraint_violations.json entries (the job's ``Evaluator``)."""
    return [v.to_dict() for v in evaluate(baseline, constraints, window).violations]


Evaluator = Callable[[Profile, Mapping[str, Any], Profile, Collection[str]], Evaluation]
"""(baseline, constraints.json, window profile, columns the window showed) -> every check's result:
what a monitoring run's data-quality section runs (tests pass None to skip the checks)."""


def evaluate_checks(
    baseline: Profile, constraints: Mapping[str, Any], window: Profile, observed: Collection[str]
) -> Evaluation:
    """The constraints of constraints.json and the statistical drift decision: the ``Evaluator``
    of a monitoring run."""
    return evaluate(baseline, constraints, window, observed_columns=observed)


__all__ = [
    "CheckType",
    "DriftMeasures",
    "Evaluation",
    "Evaluator",
    "FeatureResult",
    "MonitoringConfig",
    "Violation",
    "completeness_pvalue",
    "evaluate",
    "evaluate_checks",
    "evaluate_violations",
    "measure",
    "type_match",
]
