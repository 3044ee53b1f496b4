"""Where the per-object work of a job runs: a local process pool or a Dask cluster.

An ``Engine`` does one thing, ``map_reduce(fn, items, merge, shared)``: call ``fn(shared, item)``
for every item on its workers and fold the results with ``merge`` in a binary tree
(``tree_reduce``). The tree's shape depends only on the number of items and always merges an
earlier item's side on the left, so both engines merge in the same order, and a window's
``ReadStats.bad_keys`` stay in key order. ``fn`` and ``merge`` are plain module-level functions
(``analyzer.scaleout``): the same code runs in every engine.

* ``ProcessEngine`` (``--engine local``): a ``concurrent.futures.ProcessPoolExecutor`` of spawned
  processes, by default one per usable core that the memory limit has room for
  (``default_workers``), started for one ``map_reduce`` and stopped after it. The
  ``shared`` value (the baseline profile, the parser settings) goes to each process once through
  the pool's initializer (cloudpickle, so a preprocessor loaded from a script file travels too);
  a task's argument is only its item (an object key). Results come back to this process, which
  merges them as they arrive in order, so it holds O(log n) partial results.
* ``DaskEngine`` (``--engine dask``): ``distributed.Client`` of a running scheduler, or of a
  ``LocalCluster`` started for the engine's lifetime when no scheduler is given. ``shared`` is
  scattered to every worker once; map and merge tasks are submitted with ``retries``, and the
  merges run on the workers too, so only the final result travels back. A worker lost mid-run
  costs a recomputation of its tasks (the scheduler keeps their lineage), not a wrong result.

Workers read their objects from storage themselves; no object's bytes pass through this process or
the scheduler. Pools and clusters are the caller's to ``close()``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

ENGINES = ("local", "dask")
DEFAULT_RETRIES = 3
# Below this much input a local pool costs more (spawning processes that import the analysis
# stack, about a second) than it saves.
SMALL_JOB_BYTES = 32 << 20


def tree_reduce(parts: Iterable[R], merge: Callable[[R, R], R]) -> R | None:
    """Fold ``parts`` in a balanced binary tree, left before right; None when there are none.

    Parts are consumed as they come, keeping one pending part per tree level (a binary counter),
    so the memory is O(log n) parts however many there are.
    """
    stack: list[tuple[int, R]] = []
    for part in parts:
        level, value = 0, part
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            value = merge(left, value)
            level += 1
        stack.append((level, value))
    if not stack:
        return None
    _, out = stack.pop()
    while stack:
        _, left = stack.pop()
        out = merge(left, out)
    return out


class Engine(Protocol):
    """Runs ``fn(shared, item)`` per item and merges the results (see the module docstring)."""

    name: str
    workers: int
    min_job_bytes: int  # smaller jobs stay in the calling process

    def map_reduce(
        self,
        fn: Callable[[S, T], R],
        items: Sequence[T],
        merge: Callable[[R, R], R],
        shared: S,
    ) -> R | None:
        """The tree-merged results of ``fn`` over ``items``; None when ``items`` is empty."""
        ...

    def close(self) -> None:
        """Stop what the engine started (processes, a local cluster, the client)."""
        ...


CGROUP = Path("/sys/fs/cgroup")
# bench/RESULTS.md ("scale"): 290-350 MiB per worker process and 250-360 MiB in the parent, flat
# in the window's size; with margin, the memory one more worker and the parent each need.
WORKER_MEMORY_BYTES = 384 << 20
PARENT_MEMORY_BYTES = 384 << 20
_NO_LIMIT = 1 << 60  # cgroup v1 writes a huge number (page-rounded 2^63-1) for "no limit"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_quota(root: Path = CGROUP) -> tuple[float, str] | None:
    """The container's CPU limit in cores and the file it came from; None when unlimited.

    cgroup v2 ``cpu.max`` ("quota period" or "max period"), else cgroup v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 when unlimited).
    """
    text = _read(root / "cpu.max")
    if text is not None:
        parts = text.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                return int(parts[0]) / int(parts[1]), str(root / "cpu.max")
            except (ValueError, ZeroDivisionError):
                return None
        return None
    for sub in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota, period = (
            _read(root / sub / "cpu.cfs_quota_us"),
            _read(root / sub / "cpu.cfs_period_us"),
        )
        if quota is not None and period is not None:
            try:
                q, per = int(quota), int(period)
            except ValueError:
                return None
            return (q / per, str(root / sub / "cpu.cfs_quota_us")) if q > 0 and per > 0 else None
    return None


def cgroup_memory_limit(root: Path = CGROUP) -> tuple[int, str] | None:
    """The container's memory limit in bytes and the file it came from; None when unlimited.

    cgroup v2 ``memory.max`` ("max" when unlimited), else cgroup v1's
    ``memory/memory.limit_in_bytes``.
    """
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        text = _read(path)
        if text is None:
            continue
        if text == "max":
            return None
        try:
            limit = int(text)
        except ValueError:
            return None
        return (limit, str(path)) if 0 < limit < _NO_LIMIT else None
    return None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_cpus(root: Path = CGROUP) -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup's CPU quota."""
    cpus = _affinity()
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota[0])))
    return max(1, cpus)


def default_workers(root: Path = CGROUP, affinity: int | None = None) -> tuple[int, str]:
    """Worker processes for ``workers = 0``, and why: one per usable core, no more than fit.

    Cores: the CPU affinity capped by the container's CPU quota. Memory: each worker needs
    ``WORKER_MEMORY_BYTES`` and the parent ``PARENT_MEMORY_BYTES`` below the container's memory
    limit, so a pod on a many-core node with no CPU limit is not OOM-killed by one worker per
    node core.
    """
    cores = affinity if affinity is not None else _affinity()
    why = [f"{cores} core(s) in the CPU affinity"]
    workers = cores
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        workers = min(workers, max(1, math.ceil(quota[0])))
        why.append(f"CPU quota {quota[0]:g} core(s) ({quota[1]})")
    else:
        why.append("no CPU quota")
    memory = cgroup_memory_limit(root)
    if memory is not None:
        fit = max(1, (memory[0] - PARENT_MEMORY_BYTES) // WORKER_MEMORY_BYTES)
        workers = min(workers, fit)
        why.append(
            f"memory limit {memory[0] / (1 << 20):.0f} MiB ({memory[1]}) fits {fit} worker(s) of "
            f"{WORKER_MEMORY_BYTES >> 20} MiB beside {PARENT_MEMORY_BYTES >> 20} MiB for the parent"
        )
    else:
        why.append("no memory limit")
    return max(1, workers), "; ".join(why)


def resolve_workers(workers: int | None) -> int:
    """``workers`` when set (> 0), else :func:`default_workers`, logged with its reasons."""
    if workers and workers > 0:
        log.info("analyzer workers: %d (set by workers)", workers)
        return workers
    chosen, why = default_workers()
    log.info("analyzer workers: %d (workers = 0: %s; set workers to override)", chosen, why)
    return chosen


# --- the process pool -------------------------------------------------------------------------

_SHARED: Any = None


def _set_shared(payload: bytes) -> None:
    global _SHARED
    import pickle

    _SHARED = pickle.loads(payload)


def _call(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_SHARED, item)


class ProcessEngine:
    """A pool of ``workers`` spawned processes per ``map_reduce``."""

    name = "local"

    def __init__(self, workers: int | None = None, *, min_job_bytes: int = SMALL_JOB_BYTES) -> None:
        self.workers = resolve_workers(workers)
        self.min_job_bytes = min_job_bytes if self.workers > 1 else 1 << 62

    def map_reduce(
        self,
        fn: Callable[[S, T], R],
        items: Sequence[T],
        merge: Callable[[R, R], R],
        shared: S,
    ) -> R | None:
        if not items:
            return None
        import cloudpickle

        payload = cloudpickle.dumps(shared)
        # spawn, not fork: the parent runs an event loop and threads whose locks a fork would copy.
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(items)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_set_shared,
            initargs=(payload,),
        )
        try:
            return tree_reduce(pool.map(_call, [fn] * len(items), items), merge)
        finally:  # after a failure, the tasks not started yet are dropped, not run
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass


# --- Dask -------------------------------------------------------------------------------------


class DaskEngine:
    """A ``distributed.Client`` of ``scheduler``, or of a LocalCluster of ``workers`` processes."""

    name = "dask"

    def __init__(
        self,
        scheduler: str = "",
        workers: int | None = None,
        *,
        retries: int = DEFAULT_RETRIES,
        cluster_options: dict[str, Any] | None = None,
    ) -> None:
        import distributed

        # distributed logs every connection and worker start at INFO; keep its warnings only.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        dist: Any = distributed  # untyped calls
        self.retries = retries
        self.min_job_bytes = 0
        self.cluster: Any = None
        if scheduler:
            self.client: Any = dist.Client(scheduler)
        else:
            options: dict[str, Any] = {
                "n_workers": resolve_workers(workers),
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": ":0",  # its HTTP routes on a free port, never 8787
            }
            options.update(cluster_options or {})
            self.cluster = dist.LocalCluster(**options)
            self.client = dist.Client(self.cluster)
        self.workers = len(self.client.scheduler_info()["workers"])
        log.info(
            "dask engine: scheduler %s, %d worker(s)", self.client.scheduler.address, self.workers
        )

    def map_reduce(
        self,
        fn: Callable[[S, T], R],
        items: Sequence[T],
        merge: Callable[[R, R], R],
        shared: S,
    ) -> R | None:
        if not items:
            return None
        client = self.client
        [shared_f] = client.scatter([shared], broadcast=True, hash=False)
        pending = client.map(
            fn, [shared_f] * len(items), list(items), pure=False, retries=self.retries
        )
        pending.reverse()

        def taken() -> Iterable[Any]:
            while pending:  # hand each future over, so a merged part is not kept alive here
                yield pending.pop()

        def submit_merge(a: Any, b: Any) -> Any:
            return client.submit(merge, a, b, pure=False, retries=self.retries)

        total = tree_reduce(taken(), submit_merge)
        assert total is not None
        try:
            result: R = total.result()
        finally:
            del total
            client.cancel([shared_f])
        return result

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_engine(name: str, *, scheduler: str = "", workers: int | None = None) -> Engine:
    """The engine called ``name`` (``local`` or ``dask``); ValueError for anything else."""
    if name == "local":
        if scheduler:
            raise ValueError("a scheduler address needs the dask engine")
        return ProcessEngine(workers)
    if name == "dask":
        return DaskEngine(scheduler, workers)
    raise ValueError(f"engine {name!r}: expected one of {', '.join(ENGINES)}")


__all__ = [
    "ENGINES",
    "SMALL_JOB_BYTES",
    "DaskEngine",
    "Engine",
    "ProcessEngine",
    "available_cpus",
    "cgroup_cpu_quota",
    "cgroup_memory_limit",
    "default_workers",
    "open_engine",
    "resolve_workers",
    "tree_reduce",
]
