"""The human-readable HTML page of one monitoring run, and the per-endpoint index of runs.

Pure functions from data to one self-contained page: inline CSS and inline SVG, no JavaScript,
nothing fetched (a Content-Security-Policy meta tag forbids both), so a report opens from a
bucket, an attachment or a file:// URL and cannot run anything that came in with the data. Every
string from data (feature names, category values, descriptions, model names) is escaped.

The page is assembled from :class:`Fragment` s, one per monitoring section and comparison stage
(``analyzer.section``, ``analyzer.comparison``). Its order is what an on-call reader needs first:
the header (what ran, over which window, with what status, and each fragment's facts), every
violation and each fragment's note on them (the statistical drift decisions), then the
fragments, the long ones marked ``last`` (data quality's per-feature charts) at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from analyzer.html_format import e, num, parse_time, status_badge, window_text

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
    """One section's (or comparison stage's) part of a run's page."""

    html: str
    violations: Sequence[Mapping[str, Any]] = ()  # listed with the run's others, in order
    note: str = ""  # HTML under the list of violations (e.g. the drift decisions)
    facts: Sequence[tuple[str, str]] = ()  # (label, HTML) rows added to the page's header
    last: bool = False  # placed after every other part (a long per-feature detail)


def violations_table(violations: Sequence[Mapping[str, Any]]) -> str:
    if not violations:
        return "<p>No constraint violations.</p>"
    body = "".join(
        f"<tr><td>{e(_subject(v))}</td><td>{e(v.get('constraint_check_type', ''))}"
        f"</td><td>{e(v.get('description', ''))}</td></tr>"
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


def all_violations(fragments: Sequence[Fragment]) -> list[Mapping[str, Any]]:
    """Every fragment's violations, in page order (data quality's first)."""
    return [v for fragment in fragments for v in fragment.violations]


def _violations_section(fragments: Sequence[Fragment]) -> str:
    found = all_violations(fragments)
    parts = [f'<section id="violations"><h2>Violations ({len(found)})</h2>']
    parts.append(violations_table(found))
    parts.extend(fragment.note for fragment in fragments if fragment.note)
    parts.append("</section>")
    return "".join(parts)


def _header(s: Mapping[str, Any], fragments: Sequence[Fragment]) -> str:
    model = s.get("target_model") or ""
    title = " / ".join(e(x) for x in (s.get("endpoint", "?"), s.get("variant", "?"), model) if x)
    meta: list[tuple[str, str]] = [
        ("Window", window_text(s.get("start_time"), s.get("end_time"))),
        ("Status", status_badge(s.get("status"))),
        ("Rows", num(s.get("rows"))),
        ("Objects read", num(s.get("objects"))),
        ("Bad lines / unparsed records", f"{num(s.get('bad_lines'))} / {num(s.get('unparsed_records'))}"),
        ("Violations", num(s.get("violations", len(all_violations(fragments))))),
    ]  # fmt: skip
    meta.extend(fact for fragment in fragments for fact in fragment.facts)
    if s.get("error"):
        meta.append(("Error", e(s["error"])))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    return f'<header><h1>Model monitor: {title}</h1><dl class="meta">{dl}</dl></header>'


def _metric_rows(d: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[str]:
    rows = []
    for key, v in d.items():
        name = f"{prefix}{key}"
        if isinstance(v, Mapping) and "value" in v:
            std = v.get("standard_deviation")
            rows.append(
                f"<tr><td>{e(name)}</td><td class=n>{num(v['value'])}</td>"
                f"<td class=n>{'' if std is None else '± ' + num(std)}</td></tr>"
            )
        elif isinstance(v, Mapping) and depth < 3:
            rows.extend(_metric_rows(v, f"{name}.", depth + 1))
        elif isinstance(v, list | tuple):
            shown = ", ".join(num(x) for x in v) if len(v) <= 5 else f"({len(v):,} values)"
            rows.append(f"<tr><td>{e(name)}</td><td>{shown}</td><td></td></tr>")
        else:
            rows.append(f"<tr><td>{e(name)}</td><td class=n>{num(v)}</td><td></td></tr>")
    return rows


def doc_section(quality: Mapping[str, Any], ident: str, heading: str) -> str:
    """A section's document as tables: its violations, its nested metric tables, its scalars."""
    parts = [f'<section id="{ident}"><h2>{heading}</h2>']
    scalars = {k: v for k, v in quality.items() if not isinstance(v, Mapping | list)}
    for key, value in quality.items():
        title = e(str(key).replace("_", " ").capitalize())
        if key == "violations" and isinstance(value, list):
            parts.append(f"<h3>Violations ({len(value)})</h3>{violations_table(value)}")
        elif isinstance(value, Mapping):
            parts.append(
                f'<h3>{title}</h3><table class="tbl"><tr><th>Metric</th><th>Value</th>'
                f"<th>Std. dev.</th></tr>{''.join(_metric_rows(value))}</table>"
            )
    if scalars:
        parts.append(f'<table class="tbl">{"".join(_metric_rows(scalars))}</table>')
    parts.append("</section>")
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def render_run(summary: Mapping[str, Any], fragments: Sequence[Fragment]) -> str:
    """The self-contained HTML report of one run (see the module docstring for the layout)."""
    parts = [_header(summary, fragments), _violations_section(fragments)]
    ordered = [f for f in fragments if not f.last] + [f for f in fragments if f.last]
    parts.extend(fragment.html for fragment in ordered if fragment.html)
    title = f"{e(summary.get('endpoint', ''))}/{e(summary.get('variant', ''))}: {e(summary.get('status', ''))}"
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
    end = parse_time(run.get("end_time"))
    if end is None:
        raise ValueError(f"run has no valid end_time: {run.get('end_time')!r}")
    segments = [str(run.get("variant", "")), str(run.get("target_model") or "")]
    path = "/".join(quote(x, safe="") for x in segments if x)
    return f"{path}/{end:%Y/%m/%d/%H}/report.html"


def render_index(endpoint: str, runs: Sequence[Mapping[str, Any]]) -> str:
    """One endpoint's runs over time, newest first, each linking to its report.html."""
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    ordered = sorted(runs, key=lambda r: parse_time(r.get("end_time")) or never, reverse=True)
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
            f"<td>{window_text(r.get('start_time'), r.get('end_time'))}</td>",
            f"<td>{e(r.get('variant', ''))}</td>",
            *([f"<td>{e(r.get('target_model') or '')}</td>"] if with_model else []),
            f"<td>{status_badge(r.get('status'))}</td>",
            f"<td class=n>{num(r.get('rows'))}</td>",
            f"<td class=n>{num(r.get('violations'))}</td>",
            f'<td><a href="{e(report_href(r))}">report</a></td>',
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = (
        f'<table class="tbl"><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{"".join(body)}</table>'
        if body
        else "<p>No runs yet.</p>"
    )
    content = (
        f"<h1>Model monitor: {e(endpoint)}</h1><p>{len(ordered)} runs, newest first.</p>{table}"
    )
    return _page(f"{e(endpoint)}: monitoring runs", content)


def render_root(endpoints: Sequence[str]) -> str:
    """The reports' front page: one link per monitored endpoint's index."""
    items = "".join(f'<li><a href="{e(x)}/">{e(x)}</a></li>' for x in endpoints)
    body = f"<ul>{items}</ul>" if items else "<p>No endpoints monitored yet.</p>"
    return _page("Model monitor", f"<h1>Model monitor</h1>{body}")


__all__ = [
    "Fragment",
    "all_violations",
    "doc_section",
    "render_index",
    "render_root",
    "render_run",
    "report_href",
    "violations_table",
]
