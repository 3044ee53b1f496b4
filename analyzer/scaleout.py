"""The units of work an ``analyzer.engine.Engine`` runs: one object or file each, and their merge.

Every function here runs on a worker (a pool process or a Dask worker) and gets a picklable
description of its job plus one item (an object key, an input file); it opens the store itself
from the URI and its ``S3Settings`` and reads the object there, so object bytes never travel through
the parent or the scheduler. Stores are opened once per worker thread and reused.

* Monitoring: ``profile_object_part(job, key)`` is the job's own per-object function
  (:mod:`analyzer.object_profile`: ``profile_capture_object`` for captures,
  ``profile_dataset_object`` for a batch dataset) behind a store read; ``merge_parts`` folds two results (profile, read stats, parse stats, columns).
* Baseline: ``first_pass_file`` profiles one input file; ``second_pass_file`` counts one file
  into the bins fixed from the merged first pass and recounts late-text string columns (see
  ``analyzer.baseline``). Both results are Profiles merged with ``Profile.merge``.

A job stays in the calling process (``in_process``) when it has one item, or less input than the
engine's ``min_job_bytes`` (the local engine: 32 MiB, or anything with one worker): starting
processes would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing.util
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from analyzer.capture_columns import profile_capture_columns
from analyzer.capture_payload import INPUT, OUTPUT
from analyzer.engine import Engine
from analyzer.errors import DataError
from analyzer.object_profile import profile_capture_object, profile_dataset_object
from analyzer.object_stream import Pieces
from analyzer.payloads import ParseStats, PayloadParser
from analyzer.profile import ColumnProfile, Profile, ProfileConfig
from analyzer.readers import ReadOptions, read_chunks
from analyzer.sources import InputFile
from analyzer.window import ReadStats, Window
from modeltap.core.errors import StoreError
from modeltap.core.store import S3Settings, Store, open_store
from modeltap.core.store.base import ObjectInfo

if TYPE_CHECKING:
    from analyzer.targets import Target

Part = tuple[Profile | None, ReadStats, ParseStats, list[str]]


def in_process(engine: Engine | None, items: int, total_bytes: int) -> bool:
    """Whether a job of ``items`` objects stays in this process (see the module docstring)."""
    return engine is None or items < 2 or total_bytes < engine.min_job_bytes


# --- reading in a worker ----------------------------------------------------------------------


class _StoreCache(threading.local):
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stores: dict[tuple[str, S3Settings | None], Store] = {}


_cache = _StoreCache()
_opened: list[tuple[asyncio.AbstractEventLoop, dict[tuple[str, S3Settings | None], Store]]] = []
_opened_lock = threading.Lock()


def fetch(uri: str, config: S3Settings | None, key: str) -> bytes:
    """One object's bytes, through a store kept open for this thread (closed at process exit)."""
    loop, store = _thread_store(uri, config)
    return loop.run_until_complete(store.get(key))


def fetch_pieces(uri: str, config: S3Settings | None, key: str) -> Pieces:
    """One object's pieces (``Store.get_stream``), each fetched on this thread's own loop: a
    worker's memory follows the piece and the parser's chunk, not the object."""

    def pieces() -> Iterator[bytes]:
        loop, store = _thread_store(uri, config)
        stream = store.get_stream(key)
        try:
            while (piece := loop.run_until_complete(_next_piece(stream))) is not None:
                yield piece
        finally:
            loop.run_until_complete(stream.aclose())

    return pieces


async def _next_piece(stream: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


def _thread_store(uri: str, config: S3Settings | None) -> tuple[asyncio.AbstractEventLoop, Store]:
    if _cache.loop is None:
        _cache.loop = asyncio.new_event_loop()
        with _opened_lock:
            if not _opened:
                # Pool and Dask worker processes end through multiprocessing, which runs its
                # finalizers but not atexit; a plain process runs atexit. Either closes once.
                multiprocessing.util.Finalize(None, close_stores, exitpriority=10)
                atexit.register(close_stores)
            _opened.append((_cache.loop, _cache.stores))
    store = _cache.stores.get((uri, config))
    if store is None:
        store = _cache.stores[(uri, config)] = open_store(uri, config)
    return _cache.loop, store


def close_stores() -> None:
    """Close every store ``fetch`` opened in this process (their loops are idle by then)."""
    with _opened_lock:
        opened = list(_opened)
        _opened.clear()
    for loop, stores in opened:
        for store in stores.values():
            with contextlib.suppress(Exception):
                loop.run_until_complete(store.close())
        stores.clear()
        loop.close()


# --- monitoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectJob:
    """What every object of one monitoring run needs (sent to each worker once)."""

    store_uri: str
    store_config: S3Settings | None
    window: Window
    baseline: Profile
    names: tuple[str, ...]  # baseline columns read from the inputs (or the dataset)
    target_model: str = ""
    output_columns: tuple[str, ...] = ()
    preprocessor: Callable[..., Any] | None = None
    dataset_options: ReadOptions | None = None  # a batch dataset's tables instead of captures
    _parsers: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def object_job(
    target: Target, window: Window, store_uri: str, store_config: S3Settings | None
) -> ObjectJob:
    """The job of one target's window, its parser settings as ``analyzer.job.run_window``'s."""
    if target.batch is not None:
        return ObjectJob(
            store_uri,
            store_config,
            window,
            target.baseline,
            tuple(target.baseline.columns),
            dataset_options=ReadOptions(format=target.batch.format, header=target.batch.header),
        )
    return ObjectJob(
        store_uri,
        store_config,
        window,
        target.baseline,
        tuple(c for c in target.baseline.columns if c not in target.output_columns),
        target_model=target.target_model,
        output_columns=target.output_columns,
        preprocessor=target.preprocessor,
    )


async def engine_parts(engine: Engine, job: ObjectJob, keys: Sequence[str]) -> AsyncIterator[Part]:
    """The merged part of every object, as one item (the engine runs off the event loop)."""
    part = await asyncio.to_thread(
        engine.map_reduce, profile_object_part, list(keys), merge_parts, job
    )
    if part is not None:
        yield part


def profile_object_part(job: ObjectJob, key: str) -> Part:
    """Read one object from the store and profile it as the job does in-process."""
    if job.dataset_options is not None:
        try:
            data = fetch(job.store_uri, job.store_config, key)
        except StoreError as exc:
            raise DataError(f"cannot read the object: {exc}", file=key) from exc
        return profile_dataset_object(key, data, job.dataset_options, job.baseline, job.names)
    if "input" not in job._parsers:
        from analyzer.hooks import Preprocessor

        job._parsers["input"] = (
            Preprocessor(job.preprocessor, job.names)
            if job.preprocessor is not None
            else PayloadParser(job.names, side=INPUT)
        )
        job._parsers["output"] = (
            PayloadParser(list(job.output_columns), side=OUTPUT) if job.output_columns else None
        )
    parser = job._parsers["input"]
    try:
        if isinstance(parser, PayloadParser) and not key.endswith(".gz"):  # read in pieces
            pieces = fetch_pieces(job.store_uri, job.store_config, key)
            return profile_capture_columns(key, pieces, job.window, parser, job.baseline,
                                           job.target_model, job._parsers["output"])  # fmt: skip
        data = fetch(job.store_uri, job.store_config, key)
    except StoreError as exc:
        raise DataError(f"cannot read the object: {exc}", file=key) from exc
    return profile_capture_object(
        key, data, job.window, parser, job.baseline, job.target_model, job._parsers["output"]
    )


def merge_parts(a: Part, b: Part) -> Part:
    """Two objects' results as one: ``a`` holds the earlier keys."""
    pa_, pb = a[0], b[0]
    prof = pb if pa_ is None else pa_ if pb is None else pa_.merge(pb)
    read = ReadStats()
    read.merge(a[1])
    read.merge(b[1])
    parse = ParseStats(
        records=a[2].records + b[2].records,
        rows=a[2].rows + b[2].rows,
        failed=a[2].failed + b[2].failed,
        reasons=dict(a[2].reasons),
    )
    for reason, n in b[2].reasons.items():
        parse.reasons[reason] = parse.reasons.get(reason, 0) + n
    columns = list(dict.fromkeys([*a[3], *b[3]]))
    return prof, read, parse, columns


async def keyed_engine_parts(
    engine: Engine, job: ObjectJob, objects: Sequence[ObjectInfo]
) -> AsyncIterator[tuple[ObjectInfo, Part]]:
    """Each object's own part, profiled on the engine (for :mod:`analyzer.profile_cache`,
    which keeps parts per object); yielded in key order."""
    found = await asyncio.to_thread(
        engine.map_reduce, keyed_object_part, [o.key for o in objects], merge_keyed, job
    )
    for info in objects:
        part = (found or {}).get(info.key)
        if part is not None:
            yield info, part


def keyed_object_part(job: ObjectJob, key: str) -> dict[str, Part]:
    return {key: profile_object_part(job, key)}


def merge_keyed(a: dict[str, Part], b: dict[str, Part]) -> dict[str, Part]:
    return {**a, **b}


# --- baseline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileJob:
    """What every input file of a baseline pass needs."""

    options: ReadOptions
    store_config: S3Settings | None
    config: ProfileConfig
    edges: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)  # pass 2: bins
    restrung: tuple[str, ...] = ()  # pass 2: string statistics recounted


def _file_chunks(job: FileJob, f: InputFile, columns: Sequence[str] | None) -> Iterator[pa.Table]:
    if f.path is not None:
        source: str | bytes = f.path
    else:
        assert f.store_uri is not None and f.key is not None
        try:
            source = fetch(f.store_uri, job.store_config, f.key)
        except StoreError as exc:
            raise DataError(f"cannot read the object: {exc}", file=f.name) from exc
    for chunk in read_chunks(source, f.name, job.options, columns):
        yield chunk.batch


def first_pass_file(job: FileJob, f: InputFile) -> Profile:
    """The first-pass profile of one input file (types, moments, sketches, categories)."""
    prof = Profile.empty(job.config)
    for batch in _file_chunks(job, f, None):
        try:
            prof.update(batch)
        except DataError as exc:
            if exc.file is not None:
                raise
            raise DataError(str(exc), file=f.name) from exc
    return prof


def second_pass_file(job: FileJob, f: InputFile) -> Profile:
    """One file's bin counts and recounted strings, as a Profile holding only those."""
    prof = Profile(job.config)
    for name, edges in job.edges.items():
        prof.columns[name] = ColumnProfile(name, job.config, edges=edges)
    for name in job.restrung:
        col = prof.columns[name] = ColumnProfile(name, job.config)
        col.restart_strings(job.config)
    wanted = [*job.edges, *job.restrung]
    for batch in _file_chunks(job, f, wanted):
        for name, arr in zip(batch.schema.names, batch.columns, strict=True):
            if name in prof.columns:
                prof.columns[name].recount(
                    arr, bins=name in job.edges, strings=name in job.restrung
                )
    return prof


def merge_profiles(a: Profile, b: Profile) -> Profile:
    """``Profile.merge`` as a module-level function (pickled by reference)."""
    return a.merge(b)


def baseline_on_engine(
    engine: Engine,
    files: Sequence[InputFile],
    options: ReadOptions,
    store_config: S3Settings | None,
    config: ProfileConfig,
    second_pass: Callable[[Profile], tuple[dict[str, npt.NDArray[np.float64]], list[str]]],
) -> Profile:
    """Both baseline passes over ``files`` on ``engine``; ``second_pass(prof)`` fixes the bin
    edges and the columns to recount from the merged first pass (``analyzer.baseline``)."""
    job = FileJob(options, store_config, config)
    prof = engine.map_reduce(first_pass_file, list(files), merge_profiles, job)
    if prof is None:
        return Profile.empty(config)
    edges, restrung = second_pass(prof)
    if not edges and not restrung:
        return prof
    job2 = FileJob(options, store_config, config, edges=edges, restrung=tuple(restrung))
    counted = engine.map_reduce(second_pass_file, list(files), merge_profiles, job2)
    assert counted is not None
    for name in edges:
        prof.columns[name].numeric.bins = counted.columns[name].numeric.bins
        prof.columns[name].numeric.bin_sums = counted.columns[name].numeric.bin_sums
    for name in restrung:
        prof.columns[name].strings = counted.columns[name].strings
    return prof


__all__ = [
    "FileJob",
    "ObjectJob",
    "Part",
    "baseline_on_engine",
    "engine_parts",
    "fetch",
    "first_pass_file",
    "in_process",
    "keyed_engine_parts",
    "keyed_object_part",
    "merge_keyed",
    "merge_parts",
    "merge_profiles",
    "object_job",
    "profile_object_part",
]
