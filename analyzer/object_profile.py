"""One object of a window, parsed and profiled: a capture object (records -> the baseline's
columns, outputs beside inputs) or a batch job's dataset file. Pure functions of the bytes, run
on a worker thread in-process or on a pool/Dask worker (:mod:`analyzer.scaleout`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from analyzer.errors import DataError
from analyzer.payloads import ParseStats, PayloadParser, concat_tables
from analyzer.profile import Profile
from analyzer.readers import ReadOptions, read_chunks
from analyzer.window import ReadStats, Window, parse_records

log = logging.getLogger(__name__)


class RowParser(Protocol):
    def parse(
        self, records: Sequence[dict[str, Any]], stats: ParseStats | None = None
    ) -> pa.Table: ...


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
        from analyzer.capture_columns import profile_capture_columns

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


def records_table(
    key: str,
    data: bytes,
    window: Window | None,
    parser: RowParser,
    target_model: str = "",
    outputs: PayloadParser | None = None,
) -> tuple[pa.Table | None, ReadStats, ParseStats]:
    """The rows of one object (or one chunk of lines of it) parsed record by record; None
    when no row is left."""
    records, read = parse_records(key, data, window)
    if target_model:  # the sidecar records the target model header under modeltap.targetModel
        records = [
            r for r in records if (r.get("modeltap") or {}).get("targetModel") == target_model
        ]
    stats = ParseStats()
    if not records:
        return None, read, stats
    table = parser.parse(records, stats)
    if outputs is not None:
        table = _with_outputs(table, records, parser, outputs, stats)
    if table.num_rows == 0:
        return None, read, stats
    return table, read, stats


def _with_outputs(
    inputs: pa.Table,
    records: Sequence[dict[str, Any]],
    parser: RowParser,
    outputs: PayloadParser,
    stats: ParseStats,
) -> pa.Table:
    """Add the endpointOutput columns beside the inputs, row for row.

    The common case parses all outputs at once; when the row counts disagree (a record whose
    output has more or fewer rows than its input), records are matched one by one and a record
    whose sides disagree keeps its inputs with empty outputs (counted as ``output_rows_mismatch``).
    """
    out = outputs.parse(records)
    if out.num_rows != inputs.num_rows:
        ins, outs = [], []
        for rec in records:
            i, o = parser.parse([rec]), outputs.parse([rec])
            if i.num_rows == 0:
                continue
            if o.num_rows != i.num_rows:
                stats.fail("output_rows_mismatch")
                o = pa.table({n: pa.nulls(i.num_rows, pa.string()) for n in outputs.names})
            ins.append(i)
            outs.append(o)
        if not ins:
            return inputs
        inputs = concat_tables(ins)
        out = concat_tables(outs)
    for name in out.column_names:
        if name not in inputs.column_names:
            inputs = inputs.append_column(name, out.column(name))
    return inputs


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
