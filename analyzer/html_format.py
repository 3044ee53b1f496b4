"""Formatting for the report pages: escaping, numbers, shares, times and badges, one way for
every part of a run's page (``analyzer.report_html`` and each section's HTML)."""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

STATUS_CLASS = {
    "Completed": "ok",
    "CompletedWithViolations": "warn",
    "NoData": "muted",
    "Failed": "bad",
}


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(v: Any) -> str:
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
    return e(v)


def pct(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "&ndash;"
    if 0.0 < x < 0.0005:
        return "&lt;0.05%"
    return f"{100.0 * x:.1f}%"


def parse_time(value: Any) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def window_text(start: Any, end: Any) -> str:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return f"{e(start or '?')} → {e(end or '?')}"
    tail = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%Y-%m-%d %H:%M}"
    return f"{a:%Y-%m-%d %H:%M} → {tail} UTC"


def fmt(a: Floats) -> npt.NDArray[np.str_]:
    """Coordinates as 1-decimal strings, for the whole array at once."""
    return np.char.mod("%.1f", np.round(a, 1))


def join(*parts: npt.NDArray[np.str_] | str) -> str:
    """Concatenate string arrays (and scalars) element-wise, then join all elements."""
    out: npt.NDArray[np.str_] | str = ""
    for p in parts:
        out = np.char.add(out, p)
    return "".join(np.atleast_1d(out).tolist())


def badge(text: str, cls: str) -> str:
    return f'<span class="b {cls}">{e(text)}</span>'


def status_badge(status: Any) -> str:
    s = str(status or "Unknown")
    return badge(s, STATUS_CLASS.get(s, "muted"))


# -- numeric distributions --------------------------------------------------------------------
