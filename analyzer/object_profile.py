"""One object of a window, parsed and profiled: a capture object (records -> the baseline's
columns, outputs beside inputs) or a batch job's dataset file. Pure functions of the bytes, run
on a worker thread in-process or on a pool/Dask worker (:mod:`analyzer.scaleout`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from analyzer.capture_columns import profile_capture_columns
from analyzer.capture_records import RowParser as RowParser
from analyzer.capture_records import records_table
from analyzer.errors import DataError
from analyzer.payloads import ParseStats, PayloadParser
from analyzer.profile import Profile
from analyzer.readers import ReadOptions, read_chunks
from analyzer.window import ReadStats, Window

log = logging.getLogger(__name__)


def profile_capture_object(
    key: str,
    data: bytes,
    window: Window,
    parser: RowParser,
    baseline: Profile,
    target_model: str = "",
    outputs: PayloadParser | None = None,
) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
    """Parse and profile one capture object (runs on a worker thread).

    The built-in payload parser reads the object in columns, a chunk at a time
    (:mod:`analyzer.capture_columns`); a preprocessor hook is handed decoded records.
    """
    if isinstance(parser, PayloadParser):
        return profile_capture_columns(key, data, window, parser, baseline, target_model, outputs)
    return profile_capture_records(key, data, window, parser, baseline, target_model, outputs)


def profile_capture_records(
    key: str,
    data: bytes,
    window: Window,
    parser: RowParser,
    baseline: Profile,
    target_model: str = "",
    outputs: PayloadParser | None = None,
) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
    """One object, record by record (every record decoded into a dict): the path of
    preprocessor hooks, and the reference the columnar reader is tested against."""
    table, read, stats = records_table(key, data, window, parser, target_model, outputs)
    if table is None:
        return None, read, stats, []
    prof = Profile.empty(baseline=baseline)
    prof.update(table)
    return prof, read, stats, table.column_names


def profile_dataset_object(
    key: str, data: bytes, options: ReadOptions, baseline: Profile, names: Sequence[str]
) -> tuple[Profile | None, ReadStats, ParseStats, list[str]]:
    """Profile one object of a batch job's dataset (runs on a worker thread).

    A file that cannot be read is skipped whole and counted as a bad object, like a damaged
    capture object: one bad file must not hide the rest of the window.
    """
    read, stats = ReadStats(objects=1), ParseStats()
    prof = Profile.empty(baseline=baseline)
    seen: set[str] = set()
    try:
        for chunk in read_chunks(data, key, options, columns=names):
            batch = chunk.batch
            seen.update(chunk.file_columns or batch.schema.names)  # extra columns too
            # Rows without any baseline column still count: as rows where every one is missing.
            table = batch.select([n for n in names if n in batch.schema.names])
            stats.records += table.num_rows
            stats.rows += table.num_rows
            prof.update(table)
    except DataError as exc:
        log.warning("skipping dataset object %s: %s", key, exc)
        read.bad_objects, read.bad_keys = 1, [key]
        return None, read, stats, []
    read.records = stats.rows
    if prof.item_count == 0:
        return None, read, stats, []
    return prof, read, stats, sorted(seen)
