"""The human-readable HTML page of one monitoring run, and the per-endpoint index of runs.

Pure functions from data to one self-contained page: inline CSS and inline SVG, no JavaScript,
nothing fetched (a Content-Security-Policy meta tag forbids both), so a report opens from a
bucket, an attachment or a file:// URL and cannot run anything that came in with the data. Every
string from data (feature names, category values, descriptions, model names) is escaped.

Page order is what an on-call reader needs first: the header (what ran, over which window, with
what status), the violations and the statistical drift decisions, then one section per feature,
the most moved first: drifted (``analyzer.checks``' decision), then with a constraint violation,
then by ``linf_simple`` descending (the largest CDF gap of a numeric feature, the largest
category-share gap of a String one: one scale for both kinds).

Distributions are drawn from the profiles, not from rows. A numeric column's CDF is piecewise
linear between its exact bin edges (KLL quantiles when a profile has no bins), so any profile,
whatever its edges (another variant's, built against another baseline), is re-binned onto the
same ~30 display bins. The axis spans the 0.1%..99.9% quantiles of every side drawn, so a long
tail does not squash the plot; the share beyond is written under it. Integral features get
integer-aligned bins. The 25-feature drift scenario renders to about 64 KB (see the tests).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import numpy.typing as npt

from analyzer.inference import NULL, InferredType
from analyzer.numeric import NumericSummary
from analyzer.profile import ColumnProfile, Profile

Floats = npt.NDArray[np.float64]

DISPLAY_BINS = 30
"""Histogram bins of a numeric feature (integral ones: integer-wide bins, at most this many)."""
TOP_CATEGORIES = 10
"""Categories drawn per String feature: the largest share on any side first."""
CLIP_SHARE = 0.001
"""Share cut from each end of a numeric axis (per side drawn)."""
NOTE_BEYOND = 0.005
"""A side's share beyond the axis is written under the plot when above this."""

_W, _H = 560, 150  # histogram size in px
_PAD_X, _PAD_TOP, _PAD_BOTTOM = 6.0, 6.0, 18.0
_LABEL_W, _BAR_H = 150.0, 8.0  # category chart: label column and bar thickness
_BASE_COLOR, _CUR_COLOR = "#8c959f", "#0969da"
_PALETTE = ("#d9822b", "#2da44e", "#8250df", "#bf3989", "#1b7c83")  # comparison variants
_STATUS_CLASS = {
    "Completed": "ok",
    "CompletedWithViolations": "warn",
    "NoData": "muted",
    "Failed": "bad",
}

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;margin:0 auto;
max-width:1100px;padding:16px 24px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:0 0 6px}
table{border-collapse:collapse;margin:4px 0 8px}td,th{padding:2px 10px 2px 0;text-align:left;
vertical-align:top}th{color:#59636e;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.tbl td,.tbl th{border-bottom:1px solid #eaeef2;padding:3px 12px 3px 0}
.meta{display:grid;grid-template-columns:max-content auto;gap:0 14px;margin:8px 0}
.meta dt{color:#59636e}.meta dd{margin:0}
.b{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff;background:#59636e;vertical-align:middle}
.b.ok{background:#1a7f37}.b.warn{background:#bc4c00}.b.bad{background:#cf222e}.b.muted{background:#8c959f}
.b.drift{background:#cf222e}.b.viol{background:#bc4c00}
.feat{border:1px solid #d0d7de;border-radius:6px;padding:10px 12px;margin:10px 0;
display:grid;grid-template-columns:580px auto;gap:4px 16px}
.feat>h3,.feat>.note{grid-column:1/-1}.note{color:#59636e;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;border-radius:2px}
svg{display:block}svg text{font-size:10px;fill:#59636e}
"""


@dataclass(frozen=True)
class Fragment:
    """One section's part of a run's page: its HTML and its violations (listed with the rest)."""

    html: str
    violations: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class RunView:
    """Everything one run's page shows, as the run wrote it (see ``analyzer.job``)."""

    baseline: Profile
    window: Profile | None
    """The window's profile; None for a run without data (only the baseline is drawn)."""
    summary: Mapping[str, Any]
    """run.json: endpoint, variant, target_model, start_time, end_time, status, rows, ..."""
    violations: Sequence[Mapping[str, str]] = ()
    """constraint_violations.json's entries: feature_name, constraint_check_type, description."""
    evaluation: Mapping[str, Any] | None = None
    """drift.json (``Evaluation.to_dict()``): per feature the measures and the decision."""
    comparisons: Mapping[str, Profile] = field(default_factory=dict)
    """A/B: other variants' window profiles by variant name, drawn beside this one."""
    comparison_evaluations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Drift between this variant and each other one by variant name, in drift.json's layout."""
    sections: Sequence[Fragment] = ()
    """Each monitoring section's part of the page (model quality, bias, ...: ``analyzer.section``)."""


# -- formatting -------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(v: Any) -> str:
    """A number for reading (4 significant digits, p-values in e-notation); escaped."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0.0:
            return "0"
        if math.isinf(v):
            return str(v)
        return f"{v:.3g}" if abs(v) < 1e-3 or abs(v) >= 1e6 else f"{v:.4g}"
    return _e(v)


def _pct(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "&ndash;"
    if 0.0 < x < 0.0005:
        return "&lt;0.05%"
    return f"{100.0 * x:.1f}%"


def _time(value: Any) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _window_text(start: Any, end: Any) -> str:
    a, b = _time(start), _time(end)
    if a is None or b is None:
        return f"{_e(start or '?')} → {_e(end or '?')}"
    tail = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%Y-%m-%d %H:%M}"
    return f"{a:%Y-%m-%d %H:%M} → {tail} UTC"


def _fmt(a: Floats) -> npt.NDArray[np.str_]:
    """Coordinates as 1-decimal strings, for the whole array at once."""
    return np.char.mod("%.1f", np.round(a, 1))


def _join(*parts: npt.NDArray[np.str_] | str) -> str:
    """Concatenate string arrays (and scalars) element-wise, then join all elements."""
    out: npt.NDArray[np.str_] | str = ""
    for p in parts:
        out = np.char.add(out, p)
    return "".join(np.atleast_1d(out).tolist())


def _badge(text: str, cls: str) -> str:
    return f'<span class="b {cls}">{_e(text)}</span>'


def _status_badge(status: Any) -> str:
    s = str(status or "Unknown")
    return _badge(s, _STATUS_CLASS.get(s, "muted"))


# -- numeric distributions --------------------------------------------------------------------


@dataclass(frozen=True)
class _Cdf:
    """A numeric distribution as counts ``cum`` below points ``x`` (linear in between)."""

    x: Floats
    cum: Floats

    @property
    def total(self) -> float:
        return float(self.cum[-1])

    def at(self, points: Floats) -> Floats:
        return np.interp(points, self.x, self.cum)

    def quantile(self, q: float) -> float:
        return float(np.interp(q * self.total, self.cum, self.x))


def _cdf(s: NumericSummary, integral: bool) -> _Cdf | None:
    """The CDF of a summary's finite values; an integral value v is spread over [v, v+1)."""
    if s.count == 0:
        return None
    unit = 1.0 if integral else 0.0
    if s.edges is not None and s.bins is not None and s.edges.size:
        e = s.edges
        span = float(e[-1] - e[0]) or 1.0
        lo = s.min if math.isfinite(s.min) and s.min < e[0] else e[0] - span / max(e.size, 1)
        hi = max(s.max if math.isfinite(s.max) else e[-1], e[-1]) + unit
        if hi <= e[-1]:  # the baseline's maximum, a point mass: give it a sliver of width
            hi = e[-1] + span * 1e-6
        cum = np.concatenate(([0.0], np.cumsum(s.bins, dtype=np.float64)))
        if not integral:  # uniform within each bin
            return _Cdf(np.concatenate(([lo], e, [hi])), cum)
        # Integral: an edge is a baseline quantile, so a bin [e_i, e_i+1) spanning several
        # integers holds its left edge's value but for less than one bin's share of the
        # baseline (any value with more would be a quantile itself): place its mass there.
        inner = np.column_stack((e[:-1], np.minimum(e[:-1] + 1.0, e[1:]))).ravel()
        x = np.concatenate(([lo, e[0]], inner, [e[-1], hi]))
        c = np.concatenate(([cum[0], cum[1]], np.repeat(cum[1:-1], 2)[1:], [cum[-1]]))
        return _Cdf(x, c)
    # No bins (a baseline from elsewhere): the KLL sketch's quantiles, within its rank error.
    ranks = np.linspace(0.0, 1.0, 201)
    q = np.asarray(s.kll.get_quantiles(ranks), dtype=np.float64)
    xu = np.unique(q)
    cum = ranks[np.searchsorted(q, xu, side="right") - 1] * s.count
    cum[0] = 0.0
    xu = xu + unit
    if xu.size == 1:
        xu = np.array([xu[0] - max(unit, 1e-9), xu[0]])
        cum = np.array([0.0, float(s.count)])
    cum[-1] = float(s.count)
    return _Cdf(xu, cum)


def _display_edges(cdfs: Sequence[_Cdf], integral: bool) -> Floats:
    lo = min(c.quantile(CLIP_SHARE) for c in cdfs)
    hi = max(c.quantile(1.0 - CLIP_SHARE) for c in cdfs)
    if integral:
        lo, hi = math.floor(lo), math.floor(hi) + 1  # the bin [k, k+1) holds the value k
        width = max(1, math.ceil((hi - lo) / DISPLAY_BINS))
        n = max(1, math.ceil((hi - lo) / width))
        return lo + width * np.arange(n + 1, dtype=np.float64)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, DISPLAY_BINS + 1)


@dataclass(frozen=True)
class _Series:
    label: str
    color: str
    fill: bool


def _step_path(xpix: Floats, ypix: Floats, base: float) -> str:
    """A closed step outline: n+1 bin edges ``xpix``, n heights ``ypix``, baseline ``base``."""
    xs = np.repeat(xpix, 2)
    ys = np.concatenate(([base], np.repeat(ypix, 2), [base]))
    return "M" + _join(_fmt(xs), ",", _fmt(ys), " ").rstrip() + "Z"


def _histogram_svg(
    name: str, sides: Sequence[tuple[_Series, _Cdf]], integral: bool
) -> tuple[str, str]:
    """The overlaid histograms and a note of the shares beyond the axis."""
    edges = _display_edges([c for _, c in sides], integral)
    shares = [np.diff(c.at(edges)) / c.total for _, c in sides]
    top = max(float(s.max()) for s in shares) * 1.05 or 1.0
    x0, x1 = _PAD_X, _W - _PAD_X
    y0, y1 = _H - _PAD_BOTTOM, _PAD_TOP
    xpix = x0 + (edges - edges[0]) / (edges[-1] - edges[0]) * (x1 - x0)
    paths = []
    for (series, _), share in zip(sides, shares, strict=True):
        d = _step_path(xpix, y0 - share / top * (y0 - y1), y0)
        style = (
            f'fill="{series.color}" fill-opacity="0.35" stroke="{series.color}"'
            if series.fill
            else f'fill="none" stroke="{series.color}" stroke-width="1.5"'
        )
        paths.append(f'<path d="{d}" {style}/>')
    if integral:  # label the first and last bins by the first integer each holds
        ticks = [(edges[0], (xpix[0] + xpix[1]) / 2.0, "middle")]
        ticks.append((edges[-2], (xpix[-2] + xpix[-1]) / 2.0, "middle"))
    else:
        ticks = [(edges[0], x0, "start"), ((edges[0] + edges[-1]) / 2.0, (x0 + x1) / 2.0, "middle")]
        ticks.append((edges[-1], x1, "end"))
    labels = "".join(
        f'<text x="{px:.1f}" y="{_H - 4}" text-anchor="{a}">{_num(float(v))}</text>'
        for v, px, a in ticks
    )
    svg = (
        f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">'
        f"<title>{_e(name)}: distribution, share of present values per bin</title>"
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#d0d7de"/>'
        f"{''.join(paths)}{labels}</svg>"
    )
    beyond = []
    for (series, c), lo_hi in zip(sides, (c.at(edges[[0, -1]]) for _, c in sides), strict=True):
        below, above = lo_hi[0] / c.total, 1.0 - lo_hi[1] / c.total
        if below + above > NOTE_BEYOND:
            beyond.append(f"{_e(series.label)} {_pct(below)} below, {_pct(above)} above")
    notes = [f"Beyond the axis: {'; '.join(beyond)}."] if beyond else []
    if integral and edges[1] - edges[0] > 1:
        notes.append(f"Each bin holds {_num(int(edges[1] - edges[0]))} integers.")
    note = " ".join(notes)
    return svg, note


# -- categorical distributions ----------------------------------------------------------------


def _category_svg(
    name: str, sides: Sequence[tuple[_Series, Mapping[str, int], int]]
) -> tuple[str, str]:
    """Horizontal bars of the top categories, one bar per side; and a note on the rest."""
    labels = list(dict.fromkeys(v for _, counts, _ in sides for v in counts))
    if not labels:
        return "", "No category values."
    shares = np.array(
        [[counts.get(v, 0) / max(total, 1) for v in labels] for _, counts, total in sides]
    )
    order = np.lexsort((np.arange(len(labels)), -shares.max(axis=0)))[:TOP_CATEGORIES]
    top_shares = shares[:, order]
    k, s = len(order), len(sides)
    row_h = s * (_BAR_H + 1.0) + 5.0
    height = int(k * row_h + 4)
    bar_w = _W - _LABEL_W - 90.0
    scale = bar_w / max(float(top_shares.max()), 1e-12)
    rows = np.arange(k, dtype=np.float64)
    paths = []
    for j, (series, _, _) in enumerate(sides):
        y = 2.0 + rows * row_h + j * (_BAR_H + 1.0)
        w = np.maximum(top_shares[j] * scale, 0.5)
        d = _join(
            "M",
            _fmt(np.full(k, _LABEL_W)),
            ",",
            _fmt(y),
            "h",
            _fmt(w),
            f"v{_BAR_H:g}h-",
            _fmt(w),
            "Z",
        )
        opacity = "0.55" if series.fill and j == 0 else "0.85"
        paths.append(f'<path d="{d}" fill="{series.color}" fill-opacity="{opacity}"/>')
    texts = []
    for i, idx in enumerate(order):  # one label per category drawn (at most TOP_CATEGORIES)
        label = labels[int(idx)]
        short = label if len(label) <= 24 else label[:23] + "…"
        ty = 2.0 + i * row_h + s * (_BAR_H + 1.0) / 2.0 + 3.0
        values = " / ".join(_pct(float(top_shares[j, i])) for j in range(s))
        texts.append(
            f'<text x="{_LABEL_W - 6:.0f}" y="{ty:.1f}" text-anchor="end"><title>{_e(label)}</title>'
            f'{_e(short)}</text><text x="{_W - 4}" y="{ty:.1f}" text-anchor="end">{values}</text>'
        )
    svg = (
        f'<svg width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" role="img">'
        f"<title>{_e(name)}: share of each category (top {k})</title>"
        f"{''.join(paths)}{''.join(texts)}</svg>"
    )
    rest = len(labels) - k
    note = ""
    if rest > 0:
        left = ", ".join(
            f"{_pct(max(0.0, 1.0 - float(top_shares[j].sum())))} of {_e(series.label)}"
            for j, (series, _, _) in enumerate(sides)
        )
        note = f"{rest:,} more categories: {left}."
    return svg, note


# -- the run page -----------------------------------------------------------------------------


def _missing_share(col: ColumnProfile | None) -> float | None:
    if col is None or col.rows == 0:
        return None
    return float(col.type_counts[NULL]) / col.rows


def _sides(view: RunView, name: str) -> list[tuple[_Series, ColumnProfile]]:
    out = [(_Series("baseline", _BASE_COLOR, True), view.baseline.columns[name])]
    if view.window is not None and name in view.window.columns:
        variant = str(view.summary.get("variant") or "current")
        out.append((_Series(f"current ({variant})", _CUR_COLOR, True), view.window.columns[name]))
    for i, (variant, prof) in enumerate(view.comparisons.items()):
        if name in prof.columns:
            color = _PALETTE[i % len(_PALETTE)]
            out.append((_Series(str(variant), color, False), prof.columns[name]))
    return out


def _chart(view: RunView, name: str) -> tuple[str, str]:
    t = view.baseline.inferred_type(name)
    sides = _sides(view, name)
    if t.is_numeric:
        integral = t is InferredType.INTEGRAL
        cdfs = [(s, c) for s, col in sides if (c := _cdf(col.numeric, integral)) is not None]
        if not cdfs:
            return "", "No numeric values."
        return _histogram_svg(name, cdfs, integral)
    if t is InferredType.STRING:
        cats = [
            (s, col.strings.counts_dict(), col.strings.count)
            for s, col in sides
            if col.strings is not None and col.strings.count > 0
        ]
        return _category_svg(name, cats)
    return "", "No values of a known type."


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs)


def _measure_rows(feat: Mapping[str, Any]) -> list[tuple[str, str]]:
    m = feat.get("measures") or {}
    dec = feat.get("decision") or {}
    rows: list[tuple[str, str]] = []
    if dec:
        test = {"ks": "KS", "chi2_homogeneity": "χ² homogeneity"}.get(str(m.get("test")), "test")
        verdict = (
            _badge("drift", "drift")
            if dec.get("drift")
            else ("no drift" if dec.get("tested") else "not tested")
        )
        rows.append(("Decision", verdict))
        rows.append(
            (f"{test} p / adjusted", f"{_num(dec.get('pvalue'))} / {_num(dec.get('p_adjusted'))}")
        )
    if m:
        rows.append(("L∞ (baseline_drift_check)", _num(m.get("distance"))))
        rows.append(("L∞ simple", _num(m.get("linf_simple"))))
        if m.get("ks_statistic") is not None:
            rows.append(
                ("KS statistic", f"{_num(m['ks_statistic'])} ± {_num(m.get('ks_error_bound'))}")
            )
        if m.get("wasserstein_normed") is not None:
            rows.append(("Wasserstein (normed)", _num(m["wasserstein_normed"])))
        if m.get("chi2_statistic") is not None:
            rows.append(("χ² (dof)", f"{_num(m['chi2_statistic'])} ({_num(m.get('chi2_dof'))})"))
        if m.get("new_share") is not None:
            rows.append(
                (
                    "New / vanished share",
                    f"{_pct(m['new_share'])} / {_pct(m.get('vanished_share'))}",
                )
            )
        rows.append(("Jensen-Shannon", _num(m.get("js"))))
        rows.append(("PSI", _num(m.get("psi"))))
        if m.get("exact") is False:
            rows.append(("Inputs", "approximate (category cap or no bins)"))
    return rows


def _comparison_table(view: RunView, name: str) -> str:
    body = []
    for variant, ev in view.comparison_evaluations.items():
        feat = (ev.get("features") or {}).get(name) or {}
        m, dec = feat.get("measures") or {}, feat.get("decision") or {}
        verdict = _badge("drift", "drift") if dec.get("drift") else "no"
        body.append(
            f"<tr><td>{_e(variant)}</td><td class=n>{_num(m.get('linf_simple'))}</td>"
            f"<td class=n>{_num(m.get('js'))}</td><td class=n>{_num(dec.get('p_adjusted'))}</td>"
            f"<td>{verdict}</td></tr>"
        )
    if not body:
        return ""
    return (
        '<table class="tbl"><tr><th>vs variant</th><th>L∞</th><th>JS</th><th>p adj.</th>'
        f"<th>drift</th></tr>{''.join(body)}</table>"
    )


def _feature_section(view: RunView, name: str, feat: Mapping[str, Any]) -> str:
    t = view.baseline.inferred_type(name)
    dec = feat.get("decision") or {}
    viols = [v for v in view.violations if v.get("feature_name") == name]
    badges = "".join([_badge("drift", "drift")] if dec.get("drift") else []) + "".join(
        _badge(str(v.get("constraint_check_type", "")), "viol") for v in viols
    )
    svg, note = _chart(view, name)
    wcol = view.window.columns.get(name) if view.window is not None else None
    info: list[tuple[str, str]] = [
        ("Type", _e(t)),
        ("Missing", f"baseline {_pct(_missing_share(view.baseline.columns[name]))} · "
         f"current {_pct(_missing_share(wcol))}"),
    ]  # fmt: skip
    for variant, prof in view.comparisons.items():
        if name in prof.columns:
            info.append((f"Missing ({_e(variant)})", _pct(_missing_share(prof.columns[name]))))
    info.extend(_measure_rows(feat))
    return (
        f'<section class="feat" data-feature="{_e(name)}"><h3>{_e(name)} {badges}</h3>'
        f"<div>{svg}</div><div><table>{_rows(info)}</table>{_comparison_table(view, name)}</div>"
        + (f'<p class="note">{note}</p>' if note else "")
        + "</section>"
    )


def _order_key(name: str, feat: Mapping[str, Any], violated: set[str]) -> tuple[Any, ...]:
    linf = (feat.get("measures") or {}).get("linf_simple")
    moved = float(linf) if isinstance(linf, int | float) else -1.0
    return (not (feat.get("decision") or {}).get("drift"), name not in violated, -moved, name)


def feature_order(view: RunView) -> list[str]:
    """Baseline features, most moved first (see the module docstring)."""
    feats = (view.evaluation or {}).get("features") or {}
    violated = {str(v.get("feature_name")) for v in view.violations}
    names = list(view.baseline.columns)
    return sorted(names, key=lambda n: _order_key(n, feats.get(n) or {}, violated))


def _violations_table(violations: Sequence[Mapping[str, Any]]) -> str:
    if not violations:
        return "<p>No constraint violations.</p>"
    body = "".join(
        f"<tr><td>{_e(_subject(v))}</td><td>{_e(v.get('constraint_check_type', ''))}"
        f"</td><td>{_e(v.get('description', ''))}</td></tr>"
        for v in violations
    )
    return (
        '<table class="tbl"><tr><th>Feature / metric</th><th>Check</th><th>Description</th></tr>'
        f"{body}</table>"
    )


def _subject(v: Mapping[str, Any]) -> str:
    """What a violation is about: a feature, a quality metric, a facet's metric or a label."""
    if v.get("feature_name"):
        return str(v["feature_name"])
    if v.get("facet"):
        return f"{v['facet']} {v.get('facet_value', '')}: {v.get('metric_name', '')}"
    if v.get("label") and v.get("metric_name") == "shap":
        return f"attribution ({v['label']})"
    return str(v.get("metric_name", ""))


def all_violations(view: RunView) -> list[Mapping[str, Any]]:
    """Data-quality and drift violations, then each section's (model quality, bias, ...)."""
    found: list[Mapping[str, Any]] = list(view.violations)
    for fragment in view.sections:
        found.extend(fragment.violations)
    return found


def _violations_section(view: RunView, order: Sequence[str]) -> str:
    ev = view.evaluation or {}
    feats = ev.get("features") or {}
    drifted = [n for n in order if ((feats.get(n) or {}).get("decision") or {}).get("drift")]
    tested = sum(1 for f in feats.values() if (f.get("decision") or {}).get("tested"))
    found = all_violations(view)
    parts = [f'<section id="violations"><h2>Violations ({len(found)})</h2>']
    parts.append(_violations_table(found))
    if view.evaluation is not None:
        how = (
            f"KS (numeric) / χ² homogeneity (String) at family-wise &alpha; = {_num(ev.get('alpha'))}, "
            f"{_e(ev.get('correction', ''))} over {tested} tested features"
        )
        listed = ", ".join(f"<b>{_e(n)}</b>" for n in drifted) or "none"
        parts.append(f'<p class="drifted">Drifted ({len(drifted)}; {how}): {listed}.</p>')
    parts.append("</section>")
    return "".join(parts)


def _header(view: RunView, n_drifted: int | None) -> str:
    s = view.summary
    model = s.get("target_model") or ""
    title = " / ".join(_e(x) for x in (s.get("endpoint", "?"), s.get("variant", "?"), model) if x)
    meta: list[tuple[str, str]] = [
        ("Window", _window_text(s.get("start_time"), s.get("end_time"))),
        ("Status", _status_badge(s.get("status"))),
        ("Rows", _num(s.get("rows"))),
        ("Objects read", _num(s.get("objects"))),
        ("Bad lines / unparsed records", f"{_num(s.get('bad_lines'))} / {_num(s.get('unparsed_records'))}"),
        ("Violations", _num(s.get("violations", len(view.violations)))),
    ]  # fmt: skip
    if n_drifted is not None:
        meta.append(("Drifted features", f"{n_drifted} of {len(view.baseline.columns)}"))
    if s.get("error"):
        meta.append(("Error", _e(s["error"])))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    return f'<header><h1>Model monitor: {title}</h1><dl class="meta">{dl}</dl></header>'


def _metric_rows(d: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[str]:
    rows = []
    for key, v in d.items():
        name = f"{prefix}{key}"
        if isinstance(v, Mapping) and "value" in v:
            std = v.get("standard_deviation")
            rows.append(
                f"<tr><td>{_e(name)}</td><td class=n>{_num(v['value'])}</td>"
                f"<td class=n>{'' if std is None else '± ' + _num(std)}</td></tr>"
            )
        elif isinstance(v, Mapping) and depth < 3:
            rows.extend(_metric_rows(v, f"{name}.", depth + 1))
        elif isinstance(v, list | tuple):
            shown = ", ".join(_num(x) for x in v) if len(v) <= 5 else f"({len(v):,} values)"
            rows.append(f"<tr><td>{_e(name)}</td><td>{shown}</td><td></td></tr>")
        else:
            rows.append(f"<tr><td>{_e(name)}</td><td class=n>{_num(v)}</td><td></td></tr>")
    return rows


def doc_section(quality: Mapping[str, Any], ident: str, heading: str) -> str:
    """A section's document as tables: its violations, its nested metric tables, its scalars."""
    parts = [f'<section id="{ident}"><h2>{heading}</h2>']
    scalars = {k: v for k, v in quality.items() if not isinstance(v, Mapping | list)}
    for key, value in quality.items():
        title = _e(str(key).replace("_", " ").capitalize())
        if key == "violations" and isinstance(value, list):
            parts.append(f"<h3>Violations ({len(value)})</h3>{_violations_table(value)}")
        elif isinstance(value, Mapping):
            parts.append(
                f'<h3>{title}</h3><table class="tbl"><tr><th>Metric</th><th>Value</th>'
                f"<th>Std. dev.</th></tr>{''.join(_metric_rows(value))}</table>"
            )
    if scalars:
        parts.append(f'<table class="tbl">{"".join(_metric_rows(scalars))}</table>')
    parts.append("</section>")
    return "".join(parts)


def _legend(view: RunView) -> str:
    variant = str(view.summary.get("variant") or "current")
    items = [(_BASE_COLOR, "baseline"), (_CUR_COLOR, f"current ({variant})")]
    items += [(_PALETTE[i % len(_PALETTE)], str(v)) for i, v in enumerate(view.comparisons)]
    swatches = "".join(
        f'<span class="sw" style="background:{c}"></span>{_e(label)}' for c, label in items
    )
    return (
        f'<p class="note">{swatches}. Bars: share of present values. Numeric axes span the '
        f"{_pct(CLIP_SHARE)} to {_pct(1 - CLIP_SHARE)} quantiles of every side.</p>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def render_run(view: RunView) -> str:
    """The self-contained HTML report of one run (see the module docstring for the layout)."""
    order = feature_order(view)
    feats = (view.evaluation or {}).get("features") or {}
    n_drifted = (
        sum(1 for f in feats.values() if (f.get("decision") or {}).get("drift"))
        if view.evaluation is not None
        else None
    )
    parts = [_header(view, n_drifted), _violations_section(view, order)]
    parts.extend(fragment.html for fragment in view.sections if fragment.html)
    if view.comparison_evaluations:
        rows = []
        for variant, ev in view.comparison_evaluations.items():
            fs = (ev.get("features") or {}).values()
            n = sum(1 for f in fs if (f.get("decision") or {}).get("drift"))
            rows.append(f"<tr><td>{_e(variant)}</td><td class=n>{n}</td></tr>")
        parts.append(
            '<section id="comparisons"><h2>Variants compared</h2><table class="tbl">'
            f"<tr><th>Variant</th><th>Features that differ</th></tr>{''.join(rows)}</table></section>"
        )
    parts.append(f'<section id="features"><h2>Features ({len(order)})</h2>{_legend(view)}')
    parts.extend(_feature_section(view, name, feats.get(name) or {}) for name in order)
    parts.append("</section>")
    s = view.summary
    title = f"{_e(s.get('endpoint', ''))}/{_e(s.get('variant', ''))}: {_e(s.get('status', ''))}"
    return _page(title, "".join(parts))


# -- the index page ---------------------------------------------------------------------------


def report_href(run: Mapping[str, Any]) -> str:
    """A run's report.html relative to its endpoint's index page.

    ``run["href"]`` when given (relative only); else the layout of ``analyzer.reports.report_prefix``
    below the endpoint: ``{variant}/[{target_model}/]{yyyy/mm/dd/hh of end_time}/report.html``.
    """
    href = run.get("href")
    if href is not None:
        parts = urlsplit(str(href))
        if parts.scheme or parts.netloc or str(href).startswith("/"):
            raise ValueError(f"report href must be relative, got {href!r}")
        return str(href)
    end = _time(run.get("end_time"))
    if end is None:
        raise ValueError(f"run has no valid end_time: {run.get('end_time')!r}")
    segments = [str(run.get("variant", "")), str(run.get("target_model") or "")]
    path = "/".join(quote(x, safe="") for x in segments if x)
    return f"{path}/{end:%Y/%m/%d/%H}/report.html"


def render_index(endpoint: str, runs: Sequence[Mapping[str, Any]]) -> str:
    """One endpoint's runs over time, newest first, each linking to its report.html."""
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    ordered = sorted(runs, key=lambda r: _time(r.get("end_time")) or never, reverse=True)
    with_model = any(r.get("target_model") for r in ordered)
    head = [
        "Window",
        "Variant",
        *(["Model"] if with_model else []),
        "Status",
        "Rows",
        "Violations",
        "",
    ]
    body = []
    for r in ordered:
        cells = [
            f"<td>{_window_text(r.get('start_time'), r.get('end_time'))}</td>",
            f"<td>{_e(r.get('variant', ''))}</td>",
            *([f"<td>{_e(r.get('target_model') or '')}</td>"] if with_model else []),
            f"<td>{_status_badge(r.get('status'))}</td>",
            f"<td class=n>{_num(r.get('rows'))}</td>",
            f"<td class=n>{_num(r.get('violations'))}</td>",
            f'<td><a href="{_e(report_href(r))}">report</a></td>',
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = (
        f'<table class="tbl"><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{"".join(body)}</table>'
        if body
        else "<p>No runs yet.</p>"
    )
    content = (
        f"<h1>Model monitor: {_e(endpoint)}</h1><p>{len(ordered)} runs, newest first.</p>{table}"
    )
    return _page(f"{_e(endpoint)}: monitoring runs", content)


def render_root(endpoints: Sequence[str]) -> str:
    """The reports' front page: one link per monitored endpoint's index."""
    items = "".join(f'<li><a href="{_e(e)}/">{_e(e)}</a></li>' for e in endpoints)
    body = f"<ul>{items}</ul>" if items else "<p>No endpoints monitored yet.</p>"
    return _page("Model monitor", f"<h1>Model monitor</h1>{body}")


__all__ = [
    "RunView",
    "feature_order",
    "render_index",
    "render_root",
    "render_run",
    "report_href",
]
