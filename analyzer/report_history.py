"""Every run keeps its own reports; a retention setting bounds how many; the newest stays at a
stable URL.

Reports of one run go to ``{endpoint}/{variant}[/{model}]/yyyy/mm/dd/hh/{run}/`` where ``{run}``
is the window's end (``2026-03-01T10-05-00Z``), so the twelve runs of an hour at a 5-minute
interval no longer overwrite each other. A copy of the newest run's files is kept under
``{endpoint}/{variant}[/{model}]/latest/``. The endpoint's index lists the runs kept
(``monitor.keep_reports``, newest first); the files of a run that falls off the index are deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from modeltap.core.errors import StoreError
from modeltap.core.store.base import Store

log = logging.getLogger(__name__)

DEFAULT_KEEP = 2016  # a week of runs at the default 5-minute interval
LATEST = "latest"
_RUN_DIR = re.compile(
    r"/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9-]{8}Z$"
)


def run_dir(end: dt.datetime) -> str:
    """The per-run part of a report prefix: the window's end hour, then the end itself."""
    end = end.astimezone(dt.UTC)
    return f"{end:%Y/%m/%d/%H}/{end:%Y-%m-%dT%H-%M-%SZ}"


def latest_prefix(prefix: str) -> str:
    """Where the newest run of the target whose run is at ``prefix`` is copied."""
    where = prefix.rsplit("/", 5)[0]  # drop yyyy/mm/dd/hh/{run}
    return f"{where}/{LATEST}"


async def write_latest(
    reports: Store, prefix: str, files: Iterable[tuple[str, bytes, str]], end: dt.datetime
) -> None:
    """Copy the run's files to the stable ``latest/`` prefix, unless a newer run is there; files
    an older run left there that this run did not write (a section's that did not run this time,
    drift.json of a window without data) are deleted, so ``latest/`` is one run."""
    where = latest_prefix(prefix)
    newest = await _latest_end(reports, where)
    if newest is not None and newest > end:
        return  # a later window (another replica, a re-run) already holds latest/
    written = set()
    for name, body, ctype in files:
        await reports.put(f"{where}/{name}", body, content_type=ctype)
        written.add(f"{where}/{name}")
    stale = [o.key async for o in reports.list(where + "/") if o.key not in written]
    for key in stale:
        try:
            await reports.delete(key)
        except StoreError as exc:  # e.g. no s3:DeleteObject: run.json still names the run
            log.warning("cannot delete %s of an older run from latest/ (%s)", key, exc)
            return


async def _latest_end(reports: Store, where: str) -> dt.datetime | None:
    try:
        doc = orjson.loads(await reports.get(f"{where}/run.json"))
        return dt.datetime.fromisoformat(str(doc["end_time"]))
    except StoreError as exc:
        if exc.reason != "not_found":
            raise
        return None
    except (ValueError, KeyError, TypeError):
        return None


def bound(
    entries: Sequence[dict[str, Any]], keep: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The newest ``keep`` index entries, and the ones dropped (whose files are to go)."""
    return list(entries[:keep]), list(entries[keep:])


async def prune(reports: Store, endpoint: str, dropped: Iterable[dict[str, Any]]) -> int:
    """Delete the files of runs that fell off the index; returns how many were deleted.

    Only per-run directories are touched: an entry of the older hour layout (whose directory
    holds newer runs below it) is left alone.
    """
    deleted = 0
    for entry in dropped:
        href = str(entry.get("href", ""))
        directory = f"{endpoint}/{href.rsplit('/', 1)[0]}"
        if "/" not in href or not _RUN_DIR.search(directory):
            continue
        # every file of the run, its sections' subdirectories too (model-quality/, llm/, bias/)
        keys = [o.key async for o in reports.list(directory + "/")]
        for key in keys:
            try:
                await reports.delete(key)
            except StoreError as exc:  # e.g. no s3:DeleteObject: the run's reports stand
                log.warning("cannot delete old report %s (%s); keeping it", key, exc)
                return deleted
            deleted += 1
    if deleted:
        log.info("deleted %d report file(s) of %s beyond monitor.keep_reports", deleted, endpoint)
    return deleted
