"""Turn captured payloads into columns: the serving protocols people actually send.

Each payload is read by :mod:`analyzer.capture_payload` (format, decoding, the serving protocols'
rows); this module turns the rows of many records into one Arrow table.

Inputs (``endpointInput``):

- CSV (SageMaker): one row per line, no header; all CSV payloads of a batch are parsed together by
  Arrow's CSV reader, so the cost is per batch, not per row.
- JSON: ``{"instances": [...]}`` (SageMaker JSON, KServe/TF-Serving v1), the Open Inference Protocol
  v2 ``{"inputs": [{"name", "shape", "datatype", "data"}]}``, Seldon's
  ``{"data": {"ndarray": [...], "names": [...]}}``, a list of rows, a list of objects, one row, or
  one object of features. Rows are lists (matched to feature names by position) or objects (by name).
- base64 payloads whose content type is CSV or JSON are decoded first; other binary payloads are
  counted as unsupported.

Outputs (``endpointOutput``): CSV lines, ``{"predictions": [...]}``, v2 ``{"outputs": [...]}``, a
list, or a scalar; a prediction that is an object contributes its keys as columns.

Column names come from the caller (the baseline): positional values take the baseline's names in
order; extra positions become ``_c{i}``, which the extra-column check then reports.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from analyzer.capture_payload import INPUT, OUTPUT, PayloadError, read_side, rows_from_json

log = logging.getLogger(__name__)


@dataclass
class ParseStats:
    records: int = 0
    rows: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class PayloadParser:
    """Parses one side (input or output) of many records into an Arrow table with named columns."""

    def __init__(self, names: Sequence[str], side: str = INPUT) -> None:
        self.names = list(names)
        self.side = side

    def _name(self, i: int) -> str:
        return self.names[i] if i < len(self.names) else f"_c{i}"

    def parse(self, records: Sequence[dict[str, Any]], stats: ParseStats | None = None) -> pa.Table:
        stats = stats if stats is not None else ParseStats()
        csv_parts: list[bytes] = []
        json_rows: list[Any] = []
        output = self.side == OUTPUT
        for rec in records:
            stats.records += 1
            try:
                found = read_side(rec, self.side)
            except PayloadError as exc:
                stats.fail(exc.reason)
                continue
            if found is None:
                stats.fail("missing_side")
                continue
            kind, raw = found
            if kind == "csv":
                text = raw.strip(b"\r\n")
                if text:
                    csv_parts.append(text)
                else:
                    stats.fail("empty")
            else:
                try:
                    json_rows.extend(rows_from_json(orjson.loads(raw), output))
                except (orjson.JSONDecodeError, PayloadError, ValueError) as exc:
                    log.debug("unparseable JSON payload: %s", exc)
                    stats.fail("bad_json")
        tables = []
        if csv_parts:
            tables.append(self._csv(csv_parts, stats))
        if json_rows:
            tables.append(self._json(json_rows))
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return pa.table({n: pa.array([], pa.string()) for n in self.names})
        table = concat_tables(tables)
        stats.rows += table.num_rows
        return table

    def _csv(self, parts: list[bytes], stats: ParseStats) -> pa.Table:
        """All CSV payloads in one Arrow parse; on a ragged batch, or when a payload holds a
        quote, parse record by record (joined, an unclosed quote would run into the payloads
        after it, and how far would depend on how the records were batched)."""
        if not any(b'"' in part for part in parts):
            try:
                return self._read_csv(b"\n".join(parts))
            except pa.ArrowInvalid:
                pass
        tables = []
        for part in parts:
            try:
                tables.append(self._read_csv(part))
            except pa.ArrowInvalid:
                stats.fail("bad_csv")
        if not tables:
            return pa.table({})
        return concat_tables(tables)

    def _read_csv(self, data: bytes) -> pa.Table:
        return self.read_joined_csv(data, data.split(b"\n", 1)[0])

    def read_joined_csv(
        self, data: bytes | pa.Buffer, first: bytes, *, utf8_checked: bool = False
    ) -> pa.Table:
        """CSV payloads joined by newlines, every column as text; the width is the first
        line's (:mod:`analyzer.capture_columns` passes an Arrow buffer, not a copy, of text
        it knows to be UTF-8: ``utf8_checked`` skips the reader's own check)."""
        width = first.count(b",") + 1
        names = [self._name(i) for i in range(width)]
        return pacsv.read_csv(
            pa.BufferReader(data) if isinstance(data, pa.Buffer) else io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=True,
                                                 check_utf8=not utf8_checked),
        )  # fmt: skip

    def _json(self, rows: list[Any]) -> pa.Table:
        # Fast paths in C: all objects (Arrow builds the columns) or all equal-length lists (zip).
        if all(isinstance(r, dict) for r in rows):
            try:
                table = pa.Table.from_pylist(rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                pass
            else:
                if (
                    table.num_columns == 0
                ):  # rows of no fields ({}): rows of nulls, as beside others
                    return pa.table({self._name(0): pa.nulls(len(rows))})
                return table
        elif all(isinstance(r, list) for r in rows) and len({len(r) for r in rows}) == 1:
            if not rows[0]:  # rows of no values (``[[]]``): rows of nulls, as beside other rows
                return pa.table({self._name(0): pa.nulls(len(rows))})
            return pa.table(
                {
                    self._name(j): _to_arrow(list(column))
                    for j, column in enumerate(zip(*rows, strict=True))
                }
            )
        return self._json_mixed(rows)

    def _json_mixed(self, rows: list[Any]) -> pa.Table:
        columns: dict[str, list[Any]] = {}
        n = len(rows)
        # Named and positional rows may mix; each column is filled where present, null elsewhere.
        for i, row in enumerate(rows):
            items: Iterable[tuple[str, Any]]
            if isinstance(row, dict):
                items = row.items()
            elif isinstance(row, list):
                items = ((self._name(j), v) for j, v in enumerate(row))
            else:
                items = ((self._name(0), row),)
            for key, value in items:
                col = columns.get(key)
                if col is None:
                    col = columns[key] = [None] * n
                col[i] = value
        return pa.table({k: _to_arrow(v) for k, v in columns.items()})


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables; a column whose types disagree becomes text (as CSV columns are)."""
    if len(tables) == 1:
        return tables[0]
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                types.setdefault(f.name, set()).add(f.type)
    clash = {name for name, ts in types.items() if len(ts) > 1}
    if clash:
        tables = [
            pa.table(
                {n: _as_text(t.column(n)) if n in clash else t.column(n) for n in t.column_names}
            )
            for t in tables
        ]
    return pa.concat_tables(tables, promote_options="permissive")


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """A column as strings: Arrow's cast, or JSON text for nested values Arrow cannot cast."""
    try:
        return column.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return _to_arrow_text(column.to_pylist())


def _to_arrow(values: list[Any]) -> pa.Array:
    """A column of JSON scalars as Arrow; mixed types become strings (the type check sees them)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # e.g. uint64 beside negatives
        return _to_arrow_text(values)


def _to_arrow_text(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else (orjson.dumps(v).decode() if isinstance(v, list | dict)
                                               else str(v)) for v in values], pa.string())  # fmt: skip
