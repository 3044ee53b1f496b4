"""Columns typed as the data baseline types them, for code that holds a dataset in memory.

CSV is read as text (``analyzer.readers``) and the data baseline classifies text value by value
(``analyzer.inference``). The bias baseline holds its validation set in memory and needs its
numeric feature columns as numbers (the flip test's k-NN runs on them), so each text column gets
the type the data baseline would infer for it: a numeric one becomes float64 (missing and
non-numeric values NaN), anything else stays text. ``--type`` wins, both ways: a column fixed as
Integral or Fractional becomes numbers, one fixed as String or Unknown becomes text (a numeric
code such as a zip code then stays out of the k-NN). Columns of a type other than text that
nothing overrides (Parquet or JSON numbers) are left as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.inference import InferredType, classify, infer_type


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def typed_table(
    table: pa.Table,
    overrides: Mapping[str, InferredType],
    *,
    threshold: float = 0.0,
    keep: Collection[str] = (),
) -> pa.Table:
    """``table`` with its columns typed as above; ``keep`` names columns left alone."""
    for i, name in enumerate(table.column_names):
        column = table.column(name)
        fixed = overrides.get(name)
        if name in keep or (fixed is None and not _is_text(column.type)):
            continue
        if fixed is not None and not fixed.is_numeric:
            if not _is_text(column.type):
                table = table.set_column(i, name, pc.cast(column, pa.string()))
            continue
        if not _is_text(column.type):  # already numbers (or another type an override cannot fix)
            continue
        classified = classify(column, name=name, want_text=False)
        if (fixed or infer_type(classified.counts, threshold)).is_numeric:
            table = table.set_column(i, name, pa.array(classified.values, pa.float64()))
    return table


__all__ = ["typed_table"]
