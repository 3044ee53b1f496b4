"""Data quality's part of a run's page: one section per feature, the most moved first, with its
distribution drawn on every side (baseline, window, other variants: ``charts``), its measures and
its decision; the drift decisions under the run's violations; the drifted count in its header.

Order: drifted (``analyzer.checks``' decision), then with a constraint violation, then by
``linf_simple`` descending (the largest CDF gap of a numeric feature, the largest category-share
gap of a String one: one scale for both kinds). The 25-feature drift scenario renders to about
64 KB (see the tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from analyzer.data_quality.charts import (
    BASE_COLOR,
    CLIP_SHARE,
    CURRENT_COLOR,
    PALETTE,
    Series,
    category_svg,
    cdf,
    histogram_svg,
)
from analyzer.data_quality.result import DataResult
from analyzer.evaluation import Evaluation, FeatureResult, Violation
from analyzer.html_format import badge, e, num, pct
from analyzer.inference import NULL, InferredType
from analyzer.profile import ColumnProfile, Profile
from analyzer.report_html import Fragment
from analyzer.section import PageContext

_TESTS = {"ks": "KS", "chi2_homogeneity": "χ² homogeneity"}


def _given(x: float | None) -> bool:
    """A measure that was computed (not None, not NaN: drift.json's null)."""
    return x is not None and not math.isnan(x)


def _missing_share(col: ColumnProfile | None) -> float | None:
    if col is None or col.rows == 0:
        return None
    return float(col.type_counts[NULL]) / col.rows


def _sides(
    page: PageContext, window: Profile | None, name: str
) -> list[tuple[Series, ColumnProfile]]:
    out = [(Series("baseline", BASE_COLOR, True), page.baseline.columns[name])]
    if window is not None and name in window.columns:
        variant = str(page.summary.get("variant") or "current")
        out.append((Series(f"current ({variant})", CURRENT_COLOR, True), window.columns[name]))
    for i, (variant, other) in enumerate(page.beside.items()):
        if name in other.profile.columns:
            color = PALETTE[i % len(PALETTE)]
            out.append((Series(str(variant), color, False), other.profile.columns[name]))
    return out


def _chart(page: PageContext, window: Profile | None, name: str) -> tuple[str, str]:
    t = page.baseline.inferred_type(name)
    sides = _sides(page, window, name)
    if t.is_numeric:
        integral = t is InferredType.INTEGRAL
        cdfs = [(s, c) for s, col in sides if (c := cdf(col.numeric, integral)) is not None]
        if not cdfs:
            return "", "No numeric values."
        return histogram_svg(name, cdfs, integral)
    if t is InferredType.STRING:
        cats = [
            (s, col.strings.counts_dict(), col.strings.count)
            for s, col in sides
            if col.strings is not None and col.strings.count > 0
        ]
        return category_svg(name, cats)
    return "", "No values of a known type."


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs)


def _measure_rows(feat: FeatureResult | None) -> list[tuple[str, str]]:
    m = feat.measures if feat is not None else None
    dec = feat.decision if feat is not None else None
    rows: list[tuple[str, str]] = []
    if dec is not None:
        test = _TESTS.get(str(m.test) if m is not None else "", "test")
        verdict = (
            badge("drift", "drift") if dec.drift else ("no drift" if dec.tested else "not tested")
        )
        rows.append(("Decision", verdict))
        rows.append((f"{test} p / adjusted", f"{num(dec.pvalue)} / {num(dec.p_adjusted)}"))
    if m is not None:
        rows.append(("L∞ (baseline_drift_check)", num(m.distance)))
        rows.append(("L∞ simple", num(m.linf_simple)))
        if _given(m.ks_statistic):
            rows.append(("KS statistic", f"{num(m.ks_statistic)} ± {num(m.ks_error_bound)}"))
        if _given(m.wasserstein_normed):
            rows.append(("Wasserstein (normed)", num(m.wasserstein_normed)))
        if _given(m.chi2_statistic):
            rows.append(("χ² (dof)", f"{num(m.chi2_statistic)} ({num(m.chi2_dof)})"))
        if _given(m.new_share):
            rows.append(("New / vanished share", f"{pct(m.new_share)} / {pct(m.vanished_share)}"))
        rows.append(("Jensen-Shannon", num(m.js)))
        rows.append(("PSI", num(m.psi)))
        if m.exact is False:
            rows.append(("Inputs", "approximate (category cap or no bins)"))
    return rows


def _comparison_table(page: PageContext, name: str) -> str:
    body = []
    for variant, other in page.beside.items():
        feat = other.evaluation.features.get(name)
        m = feat.measures if feat is not None else None
        dec = feat.decision if feat is not None else None
        verdict = badge("drift", "drift") if dec is not None and dec.drift else "no"
        body.append(
            f"<tr><td>{e(variant)}</td><td class=n>{num(m.linf_simple if m else None)}</td>"
            f"<td class=n>{num(m.js if m else None)}</td>"
            f"<td class=n>{num(dec.p_adjusted if dec else None)}</td><td>{verdict}</td></tr>"
        )
    if not body:
        return ""
    return (
        '<table class="tbl"><tr><th>vs variant</th><th>L∞</th><th>JS</th><th>p adj.</th>'
        f"<th>drift</th></tr>{''.join(body)}</table>"
    )


def _feature_section(
    page: PageContext, result: DataResult, name: str, feat: FeatureResult | None
) -> str:
    t = page.baseline.inferred_type(name)
    viols = [v for v in result.violations if v.feature_name == name]
    drifted = feat is not None and feat.drift
    badges = "".join([badge("drift", "drift")] if drifted else []) + "".join(
        badge(str(v.constraint_check_type), "viol") for v in viols
    )
    svg, note = _chart(page, result.window, name)
    window = result.window
    wcol = window.columns.get(name) if window is not None else None
    info: list[tuple[str, str]] = [
        ("Type", e(t)),
        ("Missing", f"baseline {pct(_missing_share(page.baseline.columns[name]))} · "
         f"current {pct(_missing_share(wcol))}"),
    ]  # fmt: skip
    for variant, other in page.beside.items():
        if name in other.profile.columns:
            info.append(
                (f"Missing ({e(variant)})", pct(_missing_share(other.profile.columns[name])))
            )
    info.extend(_measure_rows(feat))
    return (
        f'<section class="feat" data-feature="{e(name)}"><h3>{e(name)} {badges}</h3>'
        f"<div>{svg}</div><div><table>{_rows(info)}</table>{_comparison_table(page, name)}</div>"
        + (f'<p class="note">{note}</p>' if note else "")
        + "</section>"
    )


def _order_key(name: str, feat: FeatureResult | None, violated: set[str]) -> tuple[object, ...]:
    linf = feat.measures.linf_simple if feat is not None and feat.measures is not None else None
    moved = float(linf) if linf is not None and not math.isnan(linf) else -1.0
    drifted = feat is not None and feat.drift
    return (not drifted, name not in violated, -moved, name)


def feature_order(
    baseline: Profile, evaluation: Evaluation | None, violations: Sequence[Violation]
) -> list[str]:
    """Baseline features, most moved first (see the module docstring)."""
    feats = evaluation.features if evaluation is not None else {}
    violated = {v.feature_name for v in violations}
    return sorted(baseline.columns, key=lambda n: _order_key(n, feats.get(n), violated))


def _legend(page: PageContext) -> str:
    variant = str(page.summary.get("variant") or "current")
    items = [(BASE_COLOR, "baseline"), (CURRENT_COLOR, f"current ({variant})")]
    items += [(PALETTE[i % len(PALETTE)], str(v)) for i, v in enumerate(page.beside)]
    swatches = "".join(
        f'<span class="sw" style="background:{c}"></span>{e(label)}' for c, label in items
    )
    return (
        f'<p class="note">{swatches}. Bars: share of present values. Numeric axes span the '
        f"{pct(CLIP_SHARE)} to {pct(1 - CLIP_SHARE)} quantiles of every side.</p>"
    )


def _decisions(ev: Evaluation, order: Sequence[str]) -> str:
    """The statistical drift decisions, under the run's violations."""
    drifted = [n for n in order if (f := ev.features.get(n)) is not None and f.drift]
    tested = sum(1 for f in ev.features.values() if f.decision is not None and f.decision.tested)
    how = (
        f"KS (numeric) / χ² homogeneity (String) at family-wise &alpha; = {num(ev.alpha)}, "
        f"{e(ev.correction)} over {tested} tested features"
    )
    listed = ", ".join(f"<b>{e(n)}</b>" for n in drifted) or "none"
    return f'<p class="drifted">Drifted ({len(drifted)}; {how}): {listed}.</p>'


def data_fragment(result: DataResult, page: PageContext) -> Fragment:
    """The features section (placed last), the decisions note and the drifted-count fact."""
    ev = result.evaluation
    order = feature_order(page.baseline, ev, result.violations)
    feats: Mapping[str, FeatureResult] = ev.features if ev is not None else {}
    parts = [f'<section id="features"><h2>Features ({len(order)})</h2>{_legend(page)}']
    parts.extend(_feature_section(page, result, name, feats.get(name)) for name in order)
    parts.append("</section>")
    if ev is None:
        return Fragment("".join(parts), last=True)
    n_drifted = sum(1 for f in ev.features.values() if f.drift)
    facts = [("Drifted features", f"{n_drifted} of {len(page.baseline.columns)}")]
    return Fragment("".join(parts), note=_decisions(ev, order), facts=facts, last=True)
