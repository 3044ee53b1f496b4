"""Building profiles: ``profile()`` for any data, ``build_baseline()`` for a dataset on disk or in
a store, and ``write_baseline()`` for statistics.json + constraints.json.

A baseline takes two passes over the data. The first computes everything but the bins: type
counts, moments, the KLL sketch, category counts. Then each column's type is decided, and the
numeric columns get their bin edges from their own KLL quantiles. The second pass decodes only
the columns it needs, counts their values into those bins (``analyzer.numeric``), and recounts
the string statistics of any column whose first non-numeric value came late (see
``analyzer.profile``).
Profiling *against* a baseline (a monitoring window) takes one pass: types and edges are known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.constraints import ConstraintOptions, suggest_constraints
from analyzer.engine import Engine, InlineEngine
from analyzer.errors import DataError
from analyzer.inference import NUMBER_PATTERN, STRING, InferredType
from analyzer.numeric import quantile_edges
from analyzer.profile import ChunkLike, ColumnProfile, Profile, ProfileConfig, to_record_batch
from analyzer.progress import Progress
from analyzer.readers import Chunk
from analyzer.scaleout import baseline_on_engine, in_process
from analyzer.sources import DataSource

if TYPE_CHECKING:
    from modeltap.core.store_config import StoreConnection

Data: TypeAlias = ChunkLike | DataSource | Iterable[ChunkLike]


def _chunks(data: Data) -> Iterable[ChunkLike]:
    """A re-iterable sequence of chunks from any accepted input."""
    if isinstance(data, pa.RecordBatch | pa.Table | Mapping):
        return [data]
    if isinstance(data, DataSource):
        return _SourceChunks(data)
    if iter(data) is data:
        raise TypeError(
            "profile() reads its input twice: pass a list, a Table or a DataSource, not an iterator"
        )
    return data


class _SourceChunks:
    def __init__(self, source: DataSource, progress: Progress | None = None) -> None:
        self.source = source
        self.progress = progress
        self.columns: list[str] | None = None  # decode only these (the second pass)

    def __iter__(self) -> Iterator[pa.RecordBatch | pa.Table]:
        rows = 0
        before = 0
        current = None
        for f, chunk in self.source.chunks(self.columns):
            if f is not current:
                if current is not None:
                    before += current.size
                current = f
            rows += chunk.batch.num_rows
            if self.progress is not None:
                self.progress.update(rows, before + chunk.bytes_done)
            yield _tag(chunk, f.name)


def _tag(chunk: Chunk, name: str) -> Any:
    batch = chunk.batch
    # Remember the file for error messages raised while profiling this batch.
    batch_meta = (batch.schema.metadata or {}) | {b"modeltap.file": name.encode()}
    return batch.replace_schema_metadata(batch_meta)


def _file_of(batch: pa.RecordBatch | pa.Table) -> str | None:
    meta = batch.schema.metadata or {}
    raw = meta.get(b"modeltap.file")
    return raw.decode() if raw else None


def _with_file(exc: DataError, batch: pa.RecordBatch | pa.Table) -> DataError:
    name = _file_of(batch)
    if exc.file is not None or name is None:
        return exc
    return DataError(str(exc), file=name)


def _first_pass(chunks: Iterable[ChunkLike], prof: Profile) -> None:
    for data in chunks:
        batch = to_record_batch(data)
        try:
            prof.update(batch)
        except DataError as exc:
            raise _with_file(exc, batch) from exc


def plan_second_pass(prof: Profile) -> tuple[dict[str, npt.NDArray[np.float64]], list[str]]:
    """Fix the numeric columns' bin edges from the first pass and restart the string statistics
    of late-text columns; return the edges and the restarted columns (what pass 2 counts)."""
    edges: dict[str, npt.NDArray[np.float64]] = {}
    restrung: list[str] = []
    for name, col in prof.columns.items():
        t = prof.inferred_type(name)
        if t.is_numeric:
            col.numeric.start_bins(quantile_edges(col.numeric.kll, prof.config.n_bins))
            assert col.numeric.edges is not None
            edges[name] = col.numeric.edges
        elif t is InferredType.STRING and col.text_values_missed:
            col.restart_strings(prof.config)
            restrung.append(name)
    return edges, restrung


def _second_pass(chunks: Iterable[ChunkLike], prof: Profile) -> None:
    edges, restrung_names = plan_second_pass(prof)
    binned, restrung = set(edges), set(restrung_names)
    if not binned and not restrung:
        return
    if isinstance(chunks, _SourceChunks):
        chunks.columns = [n for n in prof.columns if n in binned or n in restrung]
    for data in chunks:
        batch = to_record_batch(data)
        for name, arr in zip(batch.schema.names, batch.columns, strict=True):
            if name in binned or name in restrung:
                prof.columns[name].recount(arr, bins=name in binned, strings=name in restrung)


def profile(
    data: Data,
    *,
    baseline: Profile | None = None,
    config: ProfileConfig | None = None,
    progress: Progress | None = None,
) -> Profile:
    """Profile ``data``: one pass against ``baseline`` (its types and bins), else two passes.

    ``data`` is an Arrow RecordBatch or Table, a mapping of column name to numpy array, a list of
    those (chunks), or a ``DataSource``.
    """
    if isinstance(data, DataSource):
        chunks: Iterable[ChunkLike] = _SourceChunks(data, progress)
    else:
        chunks = _chunks(data)
    prof = Profile.empty(config, baseline=baseline)
    if progress is not None:
        progress.start("profiling" if baseline is not None else "pass 1/2")
    _first_pass(chunks, prof)
    if progress is not None:
        progress.finish()
    if baseline is None:
        if progress is not None:
            progress.start("pass 2/2")
        _second_pass(chunks, prof)
        if progress is not None:
            progress.finish()
    return prof


def build_baseline(
    source: DataSource,
    config: ProfileConfig | None = None,
    *,
    allow_unknown: bool = False,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> Profile:
    """The baseline profile of a dataset; rejects an empty dataset and all-missing columns.

    With an ``engine`` (``analyzer.engine``) both passes run file by file on its workers, unless
    the dataset is small enough to stay in this process (``analyzer.scaleout.in_process``).
    """
    if in_process(engine, len(source.files), source.total_bytes) and len(source.files) < 2:
        prof = profile(source, config=config, progress=progress)
    else:
        # Several files: profiled one by one and merged in the engines' tree order, here too,
        # so that statistics.json is the same bytes wherever it was built.
        if in_process(engine, len(source.files), source.total_bytes):
            engine = InlineEngine()
        assert engine is not None
        if progress is not None:
            progress.start(f"2 passes on {engine.workers} {engine.name} workers")
        prof = baseline_on_engine(
            engine,
            source.files,
            source.options,
            source.store_config,
            config or ProfileConfig(),
            plan_second_pass,
        )
        if progress is not None:
            progress.update(prof.item_count, source.total_bytes)
            progress.finish()
    if prof.item_count == 0:
        raise DataError("the dataset holds no rows", file=source.describe())
    for name in (prof.config.label, prof.config.prediction, *prof.config.type_overrides):
        if name is not None and name not in prof.columns:
            raise DataError(
                f"no such column (columns: {', '.join(prof.columns)})",
                file=source.describe(),
                column=name,
            )
    if not allow_unknown:
        for name, col in prof.columns.items():
            if col.num_present == 0:
                raise DataError(
                    f"every one of the {prof.item_count:,} values is missing; drop the column, fix the input, "
                    "or pass --allow-empty-columns to keep it as Unknown",
                    file=source.describe(),
                    column=name,
                )
            if col.numeric.count == 0 and prof.inferred_type(name).is_numeric:
                raise DataError("no value is a finite number", file=source.describe(), column=name)
    return prof


def mismatch_report(prof: Profile) -> list[str]:
    """Human-readable notes on columns mixing numbers and text, and on infinite values."""
    notes = []
    for name, col in prof.columns.items():
        t = prof.inferred_type(name)
        bad = int(col.type_counts[STRING])
        numbers = int(col.type_counts[1] + col.type_counts[2])
        if t is InferredType.STRING and numbers > bad:
            notes.append(
                f"column {name!r} is a String: {bad:,} of its {numbers + bad:,} values are not numbers "
                f"(e.g. {', '.join(repr(v) for v in _text_examples(col))}); if they mean missing, pass "
                "--null-value, or allow some with --mixed-type-threshold"
            )
        if t.is_numeric and bad:
            notes.append(
                f"column {name!r}: {bad:,} values are not numbers; counted as type mismatches, not as values"
            )
        if col.numeric.non_finite and t.is_numeric:
            notes.append(
                f"column {name!r}: {col.numeric.non_finite:,} values are +/-inf; left out of the statistics"
            )
    return notes


def _text_examples(col: ColumnProfile, n: int = 3) -> list[str]:
    if col.strings is None:
        return []
    values, _ = col.strings.items()
    arr = pa.array(values, pa.string())
    is_num = pc.match_substring_regex(arr, NUMBER_PATTERN)
    examples: list[str] = arr.filter(pc.invert(is_num)).to_pylist()[:n]
    return examples


def dumps(doc: Mapping[str, Any]) -> bytes:
    """JSON bytes as written to statistics.json / constraints.json."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_baseline(
    prof: Profile,
    output: str,
    options: ConstraintOptions | None = None,
    *,
    store_config: StoreConnection | None = None,
) -> tuple[str, str]:
    """Write statistics.json and constraints.json under a directory or store URI; return both
    names. ``store_config`` says how to reach an S3 store (see ``analyzer.sources``)."""
    stats = dumps(prof.to_json())
    cons = dumps(suggest_constraints(prof, options or ConstraintOptions()))
    names = write_documents(
        output, {"statistics.json": stats, "constraints.json": cons}, store_config=store_config
    )
    return names[0], names[1]


def write_documents(
    output: str, docs: Mapping[str, bytes], *, store_config: StoreConnection | None = None
) -> list[str]:
    """Write JSON documents by name under a directory or store URI; return where they went."""
    if output.startswith(("s3://", "file://")):
        import asyncio

        from sidecar.store import open_store

        async def put() -> None:
            store = open_store(output, store_config)
            try:
                for name, body in docs.items():
                    await store.put(name, body, content_type="application/json")
            finally:
                await store.close()

        asyncio.run(put())
        base = output.rstrip("/")
        return [f"{base}/{name}" for name in docs]
    from pathlib import Path

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for name, body in docs.items():
        (out / name).write_bytes(body)
    return [str(out / name) for name in docs]


__all__ = [
    "build_baseline",
    "dumps",
    "mismatch_report",
    "plan_second_pass",
    "profile",
    "write_baseline",
    "write_documents",
]
