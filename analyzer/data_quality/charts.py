"""The distribution charts of a feature, inline SVG drawn from profiles (never rows).

A numeric column's CDF is piecewise linear between its exact bin edges (KLL quantiles when a
profile has no bins), so any profile, whatever its edges (another variant's, built against
another baseline), is re-binned onto the same ~30 display bins. The axis spans the 0.1%..99.9%
quantiles of every side drawn, so a long tail does not squash the plot; the share beyond is
written under it. Integral features get integer-aligned bins. A String column is drawn as the
shares of its most frequent categories on every side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analyzer.html_format import Floats, e, fmt, join, num, pct
from analyzer.numeric import NumericSummary

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
BASE_COLOR, CURRENT_COLOR = "#8c959f", "#0969da"
PALETTE = ("#d9822b", "#2da44e", "#8250df", "#bf3989", "#1b7c83")  # other variants drawn beside


@dataclass(frozen=True)
class Cdf:
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


def cdf(s: NumericSummary, integral: bool) -> Cdf | None:
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
            return Cdf(np.concatenate(([lo], e, [hi])), cum)
        # Integral: an edge is a baseline quantile, so a bin [e_i, e_i+1) spanning several
        # integers holds its left edge's value but for less than one bin's share of the
        # baseline (any value with more would be a quantile itself): place its mass there.
        inner = np.column_stack((e[:-1], np.minimum(e[:-1] + 1.0, e[1:]))).ravel()
        x = np.concatenate(([lo, e[0]], inner, [e[-1], hi]))
        c = np.concatenate(([cum[0], cum[1]], np.repeat(cum[1:-1], 2)[1:], [cum[-1]]))
        return Cdf(x, c)
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
    return Cdf(xu, cum)


def display_edges(cdfs: Sequence[Cdf], integral: bool) -> Floats:
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
class Series:
    label: str
    color: str
    fill: bool


def _step_path(xpix: Floats, ypix: Floats, base: float) -> str:
    """A closed step outline: n+1 bin edges ``xpix``, n heights ``ypix``, baseline ``base``."""
    xs = np.repeat(xpix, 2)
    ys = np.concatenate(([base], np.repeat(ypix, 2), [base]))
    return "M" + join(fmt(xs), ",", fmt(ys), " ").rstrip() + "Z"


def histogram_svg(
    name: str, sides: Sequence[tuple[Series, Cdf]], integral: bool
) -> tuple[str, str]:
    """The overlaid histograms and a note of the shares beyond the axis."""
    edges = display_edges([c for _, c in sides], integral)
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
        f'<text x="{px:.1f}" y="{_H - 4}" text-anchor="{a}">{num(float(v))}</text>'
        for v, px, a in ticks
    )
    svg = (
        f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">'
        f"<title>{e(name)}: distribution, share of present values per bin</title>"
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#d0d7de"/>'
        f"{''.join(paths)}{labels}</svg>"
    )
    beyond = []
    for (series, c), lo_hi in zip(sides, (c.at(edges[[0, -1]]) for _, c in sides), strict=True):
        below, above = lo_hi[0] / c.total, 1.0 - lo_hi[1] / c.total
        if below + above > NOTE_BEYOND:
            beyond.append(f"{e(series.label)} {pct(below)} below, {pct(above)} above")
    notes = [f"Beyond the axis: {'; '.join(beyond)}."] if beyond else []
    if integral and edges[1] - edges[0] > 1:
        notes.append(f"Each bin holds {num(int(edges[1] - edges[0]))} integers.")
    note = " ".join(notes)
    return svg, note


# -- categorical distributions ----------------------------------------------------------------


def category_svg(
    name: str, sides: Sequence[tuple[Series, Mapping[str, int], int]]
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
        d = join(
            "M",
            fmt(np.full(k, _LABEL_W)),
            ",",
            fmt(y),
            "h",
            fmt(w),
            f"v{_BAR_H:g}h-",
            fmt(w),
            "Z",
        )
        opacity = "0.55" if series.fill and j == 0 else "0.85"
        paths.append(f'<path d="{d}" fill="{series.color}" fill-opacity="{opacity}"/>')
    texts = []
    for i, idx in enumerate(order):  # one label per category drawn (at most TOP_CATEGORIES)
        label = labels[int(idx)]
        short = label if len(label) <= 24 else label[:23] + "…"
        ty = 2.0 + i * row_h + s * (_BAR_H + 1.0) / 2.0 + 3.0
        values = " / ".join(pct(float(top_shares[j, i])) for j in range(s))
        texts.append(
            f'<text x="{_LABEL_W - 6:.0f}" y="{ty:.1f}" text-anchor="end"><title>{e(label)}</title>'
            f'{e(short)}</text><text x="{_W - 4}" y="{ty:.1f}" text-anchor="end">{values}</text>'
        )
    svg = (
        f'<svg width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" role="img">'
        f"<title>{e(name)}: share of each category (top {k})</title>"
        f"{''.join(paths)}{''.join(texts)}</svg>"
    )
    rest = len(labels) - k
    note = ""
    if rest > 0:
        left = ", ".join(
            f"{pct(max(0.0, 1.0 - float(top_shares[j].sum())))} of {e(series.label)}"
            for j, (series, _, _) in enumerate(sides)
        )
        note = f"{rest:,} more categories: {left}."
    return svg, note


# -- the run page -----------------------------------------------------------------------------
