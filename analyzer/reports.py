"""Writing a run's reports: the JSON files SageMaker's tools read, the HTML page people read, and
the per-endpoint index of runs.

Everything goes to ``{reports}/{endpoint}/{variant}[/{model}]/yyyy/mm/dd/hh/{run}/`` of the
window's end (one directory per run, :mod:`analyzer.report_history`, which also keeps the newest
under ``latest/`` and bounds how many runs are kept); the index is ``{reports}/{endpoint}/index.html`` and the store's root ``index.html`` lists
the endpoints. Indexes are rebuilt from the ``run.json`` files in the store, so runs written by
other processes (CronJob runs, other replicas) appear too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import replace
from typing import Any

import orjson

from analyzer.profile import Profile
from analyzer.registry import COMPARISONS, SECTIONS
from analyzer.report_history import DEFAULT_KEEP, bound, prune, run_dir, write_latest
from analyzer.report_html import Fragment, render_index, render_root, render_run
from analyzer.results import RunResult, run_summary
from analyzer.section import Beside, PageContext
from modeltap.core.errors import StoreError
from modeltap.core.store.base import Store

log = logging.getLogger(__name__)

JSON = "application/json"
HTML = "text/html; charset=utf-8"


def report_prefix(endpoint: str, variant: str, end: dt.datetime, model: str = "") -> str:
    where = f"{endpoint}/{variant}/{model}" if model else f"{endpoint}/{variant}"
    return f"{where}/{run_dir(end)}"


async def write_reports(
    reports: Store, result: RunResult, baseline: Profile | None, *, keep: int = DEFAULT_KEEP
) -> None:
    """Write the run's files (each section's, then each comparison stage's, the page, run.json
    last) and the ``latest/`` copy, then refresh its endpoint's index (which keeps the newest
    ``keep`` runs)."""
    prefix = report_prefix(result.endpoint, result.variant, result.window.end, result.model)
    result.report_prefix = prefix
    summary = run_summary(result)
    opt = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    documents: list[tuple[str, object]] = []
    for section in SECTIONS:
        if section.name in result.sections:
            documents.extend(section.report_files(result.sections[section.name]))
    for stage in COMPARISONS:
        if stage.name in result.comparisons:
            documents.extend(stage.report_files(result.comparisons[stage.name]))
    files = [(path, orjson.dumps(doc, option=opt), JSON) for path, doc in documents]
    if baseline is not None:
        page = await asyncio.to_thread(render_run, summary, _fragments(result, baseline, summary))
        files.append(("report.html", page.encode(), HTML))
    files.append(("run.json", orjson.dumps(summary, option=opt), JSON))  # last: the run is done
    for name, body, ctype in files:
        await reports.put(f"{prefix}/{name}", body, content_type=ctype)
    await write_latest(reports, prefix, files, result.window.end)
    href = prefix[len(result.endpoint) + 1 :] + "/report.html"
    await write_index(reports, result.endpoint, {**summary, "href": href}, keep=keep)


def _fragments(result: RunResult, baseline: Profile, summary: dict[str, Any]) -> list[Fragment]:
    """Each section's part of the page (given what the comparison stages draw beside it), then
    each comparison stage's."""
    beside: dict[str, Beside] = {}
    stages = [(s, result.comparisons[s.name]) for s in COMPARISONS if s.name in result.comparisons]
    for stage, found in stages:
        beside.update(stage.beside(found))
    page = PageContext(summary, baseline, beside)
    fragments = [
        replace(section.html(found, page), violations=section.violations(found))
        for section in SECTIONS
        if (found := result.sections.get(section.name)) is not None
    ]
    fragments.extend(f for stage, found in stages if (f := stage.html(found)) is not None)
    return fragments


async def write_index(
    reports: Store, endpoint: str, summary: dict[str, Any], *, keep: int = DEFAULT_KEEP
) -> None:
    """Add the run to ``{endpoint}/index.json`` (newest first, the newest ``keep``) and render
    index.html; the files of runs beyond ``keep`` are deleted.

    The index is updated in place rather than rebuilt from a listing, so a run costs two small
    objects however many runs the store holds; a re-run of the same window replaces its entry.
    """
    key = f"{endpoint}/index.json"
    try:
        entries = orjson.loads(await reports.get(key))
        if not isinstance(entries, list):
            raise ValueError("not a list")
    except StoreError as exc:
        if exc.reason != "not_found":
            raise
        entries = []
    except ValueError as exc:  # a damaged index is rebuilt from this run on, not fatal
        log.warning("%s is unreadable (%s); starting it afresh", key, exc)
        entries = []
    entries = [e for e in entries if isinstance(e, dict) and e.get("href") != summary["href"]]
    entries, dropped = bound(sorted([summary, *entries], key=_end_time, reverse=True), keep)
    await reports.put(key, orjson.dumps(entries), content_type=JSON)
    await reports.put(
        f"{endpoint}/index.html", render_index(endpoint, entries).encode(), content_type=HTML
    )
    await prune(reports, endpoint, dropped)


def _end_time(entry: dict[str, Any]) -> str:
    return str(entry.get("end_time", ""))  # ISO-8601 UTC: sorts as text


async def write_root_index(reports: Store, endpoints: list[str]) -> None:
    """The store's ``index.html``: one link per monitored endpoint."""
    await reports.put("index.html", render_root(sorted(set(endpoints))).encode(), content_type=HTML)
