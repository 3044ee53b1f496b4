"""A capture object (or a chunk of its lines) read record by record: every line decoded into a
dict, then parsed by a :class:`~analyzer.object_profile.RowParser`. The path of preprocessor
hooks, the fallback of :mod:`analyzer.capture_columns` for what it does not read in columns, and
the reference it is tested against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from analyzer.payloads import ParseStats, PayloadParser, concat_tables
from analyzer.window import ReadStats, Window, parse_records


class RowParser(Protocol):
    def parse(
        self, records: Sequence[dict[str, Any]], stats: ParseStats | None = None
    ) -> pa.Table: ...


def records_table(
    key: str,
    data: bytes,
    window: Window | None,
    parser: RowParser,
    target_model: str = "",
    outputs: PayloadParser | None = None,
    *,
    decoded: bool = False,
) -> tuple[pa.Table | None, ReadStats, ParseStats]:
    """The rows of one object (or one chunk of lines of it) parsed record by record; None
    when no row is left."""
    records, read = parse_records(key, data, window, decoded=decoded)
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
