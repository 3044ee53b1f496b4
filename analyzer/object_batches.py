"""Small capture objects profiled together: one profile update per batch of objects, not one per
object.

A profile update and a merge cost a few milliseconds whatever the number of rows (25 columns:
classification, a category ``group_by`` each, sketches), which made a window of 1,000-record
objects 2-3x slower per record than one of 100,000-record objects. Here the rows of consecutive
small objects (each within one read chunk, :data:`~analyzer.capture_columns.CHUNK_BYTES`) are
concatenated, up to :data:`BATCH_ROWS`, and profiled at once; a large object is profiled alone,
chunk by chunk, read in pieces (``Store.get_stream``, :mod:`analyzer.object_stream`) unless it is
gzipped. Read counts stay per object (the profile cache keeps them per object). Tables
are concatenated only when their schemas are equal, so every value is classified as it would be
alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from analyzer.capture_columns import (
    CHUNK_BYTES,
    DamagedObject,
    capture_tables,
    damaged,
    profile_capture_columns,
)
from analyzer.object_stream import ObjectData, thread_pieces, whole
from analyzer.payloads import ParseStats, PayloadParser
from analyzer.profile import Profile
from analyzer.window import ReadStats, Window, gzipped
from modeltap.core.store.base import ObjectInfo, Store

BATCH_ROWS = 25_000
"""Rows of small objects profiled together (50,000 peaked at 277-303 MiB in bench/monitor's
1,000-object window, 25,000 at 274-279 MiB, for ~8 % more CPU)."""
GZIP_RATIO = 10  # a gzipped object counts as this many times its size when deciding "small"

Part = tuple[Profile | None, ReadStats, ParseStats, list[str]]
Batch = tuple[list[tuple[ObjectInfo, ReadStats]], Part]


@dataclass
class _Pending:
    objects: list[tuple[ObjectInfo, ReadStats]] = field(default_factory=list)
    tables: list[pa.Table] = field(default_factory=list)
    stats: ParseStats = field(default_factory=ParseStats)
    rows: int = 0
    key: Hashable = None
    schema: pa.Schema | None = None


async def capture_batches(
    captures: Store,
    objects: Sequence[ObjectInfo],
    window: Window,
    parser: PayloadParser,
    baseline: Profile,
    target_model: str = "",
    outputs: PayloadParser | None = None,
    *,
    batch_of: Callable[[ReadStats], Hashable] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> AsyncIterator[Batch]:
    """The objects read in key order and profiled in batches: each batch's objects with their
    own read counts, and the batch's part. Objects go in one batch only while ``batch_of``
    (of their read counts) agrees, which lets the profile cache keep slices apart."""

    def tables(info: ObjectInfo, data: bytes) -> tuple[list[pa.Table], ReadStats, ParseStats]:
        read, stats = ReadStats(objects=1), ParseStats()
        try:
            found = list(capture_tables(info.key, data, window, parser, target_model, outputs,
                                        read, stats))  # fmt: skip
        except DamagedObject as exc:
            return [], *damaged(info.key, exc)
        return found, read, stats

    pending = _Pending()
    loop = asyncio.get_running_loop()
    for info in objects:
        streamed = info.size > CHUNK_BYTES and not info.key.endswith(".gz")
        data: ObjectData = (
            thread_pieces(captures, info.key, loop) if streamed else await captures.get(info.key)
        )
        if streamed or _large(info.key, whole(data)):  # alone, chunk by chunk
            if pending.objects:
                yield await asyncio.to_thread(_profile, pending, baseline)
                pending = _Pending()
            part = await asyncio.to_thread(
                profile_capture_columns, info.key, data, window, parser, baseline,
                target_model, outputs,
            )  # fmt: skip
            yield [(info, part[1])], part
            continue
        assert isinstance(data, bytes)
        found, read, stats = await asyncio.to_thread(tables, info, data)
        del data
        key = batch_of(read) if batch_of is not None else None
        schema = found[0].schema if found else None
        if pending.objects and (
            key != pending.key
            or pending.rows >= batch_rows
            or (schema is not None and pending.schema is not None and schema != pending.schema)
        ):
            yield await asyncio.to_thread(_profile, pending, baseline)
            pending = _Pending()
        pending.objects.append((info, read))
        pending.key = key
        pending.tables.extend(found)
        pending.rows += sum(t.num_rows for t in found)
        if schema is not None:
            pending.schema = schema
        _add(pending.stats, stats)
    if pending.objects:
        yield await asyncio.to_thread(_profile, pending, baseline)


def _large(key: str, data: bytes) -> bool:
    return len(data) * (GZIP_RATIO if gzipped(key, data) else 1) > CHUNK_BYTES  # ~10x unpacked


def _profile(pending: _Pending, baseline: Profile) -> Batch:
    read = ReadStats()
    for _, r in pending.objects:
        read.merge(r)
    if not pending.tables:
        return pending.objects, (None, read, pending.stats, [])
    table = pending.tables[0] if len(pending.tables) == 1 else pa.concat_tables(pending.tables)
    prof = Profile.empty(baseline=baseline)
    prof.update(table, utf8_checked=True)  # capture_tables' text is checked by its readers
    return pending.objects, (prof, read, pending.stats, list(table.column_names))


def _add(total: ParseStats, stats: ParseStats) -> None:
    total.records += stats.records
    total.rows += stats.rows
    total.failed += stats.failed
    for reason, n in stats.reasons.items():
        total.reasons[reason] = total.reasons.get(reason, 0) + n
