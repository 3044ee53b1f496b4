"""Each capture object profiled once: partial profiles kept between runs and merged into later
windows.

(Over 400 lines on purpose: the index, its groups and their clean-up are one on-store format
read and written by one class; split, each part would have to know the others' invariants.)

A 60-minute window run every 5 minutes used to parse each object 12 times. The profile is a
monoid (``merge(profile(a), profile(b)) == profile(a + b)``), so a run now profiles only the
objects it has not seen, keeps their merged profile as one *group* per slice of the window
(new objects of a slice that already has a group join it), and merges the groups of earlier
runs for the rest of its window.

Where: a store prefix (``monitor.cache``; by default ``{reports}/_cache/``), under
``{endpoint}/{variant}[/{model}]/{context}/``: ``index.json`` (what is known of each object, and
the groups) and ``groups/{id}.json`` (a group's profile as statistics.json, which round-trips
exactly). Restarts, replicas and the Dask engine (the parent does the lookups) share it; a
process also keeps recently used group profiles in memory.

Keyed: ``{context}`` is a digest of everything a partial depends on besides the object: the
baseline (its statistics.json, hence its columns, types, bin edges and profile settings), the
parser configuration (input names, output columns, preprocessor, target model) and
:data:`FORMAT` (bumped when parsing changes). An object is known by key, size and last-modified
time (capture objects are written once). A new baseline or parser configuration is a new
context: nothing of the old one is read again, and its files are deleted once unused.

Which windows a partial serves: every record of an object has an ``inferenceTime``; a group's
profile is used only when the window lists every member and holds each member's whole time
range (so the window filter drops nothing from it). An object wholly outside a window needs no
reading at all (its counts are in the index). Objects across a window edge are read each run.

Bounded: groups with a member that has fallen behind the window's start are deleted at the end
of the run (no later window can use them), objects last seen long ago leave the index, and the
index keeps at most ``monitor.cache_max_entries`` objects (the oldest go first).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from analyzer.payloads import ParseStats
from analyzer.profile import Profile
from analyzer.statistics import profile_from_statistics, profile_to_statistics
from analyzer.window import ReadStats, Window
from modeltap.core.errors import StoreError
from modeltap.core.store.base import ObjectInfo, Store

if TYPE_CHECKING:
    from analyzer.targets import Target

log = logging.getLogger(__name__)

FORMAT = 1
"""Bumped whenever parsing or profiling changes what a partial holds: old partials then miss."""

Part = tuple[Profile | None, ReadStats, ParseStats, list[str]]
Batch = tuple[list[tuple[ObjectInfo, ReadStats]], Part]  # objects, each one's counts, their part
BatchOf = Callable[[ReadStats], Hashable]
ProfileNew = Callable[[Sequence[ObjectInfo], BatchOf], AsyncIterator[Batch]]
"""Profiles objects, alone or in batches of objects that ``BatchOf`` puts together."""

GROUPS_PER_WINDOW = 12
"""New objects are grouped by when their records start, in slices of a twelfth of the window:
a slice leaves the window whole as it slides, so a group is rarely broken by the window's start."""
_MEMORY_GROUPS = 16  # group profiles kept in memory across runs, per process (a window's)
_FINGERPRINTS: dict[int, tuple[Profile, str]] = {}
_MEMORY: OrderedDict[str, Profile] = OrderedDict()


@dataclass
class CacheStats:
    """What the cache did in one run (the bench and the logs read it)."""

    reused_objects: int = 0
    skipped_outside: int = 0
    profiled: int = 0
    groups_read: int = 0
    groups_written: int = 0


@dataclass
class _Known:
    """One object, as the index knows it."""

    key: str
    size: int
    mtime: float
    first: float | None
    last: float | None
    timed: int  # records with a valid inferenceTime (inside the window or not)
    bad_lines: int
    bad_object: bool
    group: str = ""

    def same(self, info: ObjectInfo) -> bool:
        return self.size == info.size and self.mtime == info.last_modified

    def inside(self, window: Window) -> bool:
        if self.first is None or self.last is None:
            return True  # no timed record: nothing to filter
        return window.start.timestamp() <= self.first and self.last < window.end.timestamp()

    def outside(self, window: Window) -> bool:
        if self.first is None or self.last is None:
            return True
        return self.last < window.start.timestamp() or self.first >= window.end.timestamp()

    def read_outside(self) -> ReadStats:
        """Its read counts in a window that holds none of its records."""
        read = ReadStats(objects=1, outside_window=self.timed, bad_lines=self.bad_lines)
        read.bad_objects = int(self.bad_object)
        if self.bad_lines or self.bad_object:
            read.bad_keys = [self.key]
        read.saw_times(self.first, self.last)
        return read

    def to_doc(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "mtime": self.mtime, "first": self.first,
                "last": self.last, "timed": self.timed, "bad_lines": self.bad_lines,
                "bad_object": self.bad_object, "group": self.group}  # fmt: skip

    @classmethod
    def of(cls, info: ObjectInfo, read: ReadStats) -> _Known:
        return cls(info.key, info.size, info.last_modified, read.first_time, read.last_time,
                   read.records + read.outside_window, read.bad_lines, read.bad_objects > 0)  # fmt: skip


@dataclass
class _Group:
    id: str
    members: list[str]
    parse: ParseStats
    columns: list[str]
    last: float
    has_profile: bool = True

    def to_doc(self) -> dict[str, Any]:
        return {"id": self.id, "members": self.members, "columns": self.columns,
                "last": self.last, "has_profile": self.has_profile, "parse": {"records": self.parse.records,
                "rows": self.parse.rows, "failed": self.parse.failed,
                "reasons": self.parse.reasons}}  # fmt: skip


@dataclass
class _Index:
    objects: dict[str, _Known] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)


class ProfileCache:
    """Partial profiles of one store prefix; one instance may serve every target and run."""

    def __init__(self, store: Store, max_entries: int = 20000) -> None:
        self.store = store
        self.max_entries = max_entries
        self.last = CacheStats()
        self._memory = _MEMORY  # shared by the instances of a process (one per run)

    async def parts(
        self,
        scope: str,
        context: str,
        window: Window,
        objects: Sequence[ObjectInfo],
        profile_new: ProfileNew,
    ) -> AsyncIterator[Part]:
        """The window's parts: cached groups, counts of objects wholly outside the window, and
        the parts of the objects profiled now (by ``profile_new``), which are then cached."""
        where = f"{scope}/{context}"
        stats = self.last = CacheStats()
        index = await self._read_index(where)
        listed = {o.key: o for o in objects}
        known = {k: v for k, v in index.objects.items() if k in listed and v.same(listed[k])}
        covered: set[str] = set()
        used: dict[str, Profile | None] = {}  # groups of this window, by id: new objects join them
        for group in list(index.groups.values()):
            members = [known.get(k) for k in group.members]
            if not all(m is not None and m.group == group.id for m in members):
                continue
            if not all(m is not None and m.inside(window) for m in members):
                continue
            prof = await self._group_profile(where, group.id) if group.has_profile else None
            if prof is None and group.has_profile:
                del index.groups[group.id]
                continue
            stats.groups_read += 1
            read = ReadStats()
            for m in members:
                assert m is not None
                read.merge(_read_inside(m))
            covered.update(group.members)
            used[group.id] = prof
            stats.reused_objects += len(group.members)
            yield prof, read, group.parse, list(group.columns)
        todo: list[ObjectInfo] = []
        for info in objects:
            if info.key in covered:
                continue
            k = known.get(info.key)
            if k is not None and k.outside(window):
                stats.skipped_outside += 1
                yield None, k.read_outside(), ParseStats(), []
            else:
                todo.append(info)
        fresh: list[_Known] = []
        buckets: dict[int, _Bucket] = {}  # merged as parts arrive: memory of one group each
        span = max(60.0, (window.end - window.start).total_seconds() / GROUPS_PER_WINDOW)

        def batch_of(read: ReadStats) -> Hashable:
            """Objects of one slice batch together; one across the window's edge goes alone."""
            k = _Known("", 0, 0.0, read.first_time, read.last_time, 0, 0, False)
            return int((k.first or 0.0) // span) if k.inside(window) else object()

        if todo:
            async for batch, part in profile_new(todo, batch_of):
                stats.profiled += len(batch)
                new = [_Known.of(info, read) for info, read in batch]
                fresh.extend(new)
                if all(k.inside(window) for k in new):  # one slice (batch_of)
                    bucket = buckets.setdefault(int((new[0].first or 0.0) // span), _Bucket())
                    await asyncio.to_thread(bucket.add, new, part)
                yield part
        try:
            await self._update(where, index, window, fresh, buckets, used, span)
            await self._sweep(scope, context, window, index)
        except StoreError as exc:  # the run's result stands; the next run profiles more
            log.warning("profile cache %s not updated: %s", where, exc)

    async def _sweep(self, scope: str, context: str, window: Window, index: _Index) -> None:
        """Delete what no run uses any more, once untouched for two window lengths: the
        partials of other contexts (an older baseline or parser configuration), and groups the
        index does not name (written by a replica whose index update another one overwrote)."""
        stale = time.time() - 2 * (window.end - window.start).total_seconds()
        listed = [o async for o in self.store.list(f"{scope}/")]
        dead = {
            o.key.rsplit("/", 1)[0]
            for o in listed
            if o.key.endswith("/index.json")
            and o.key != f"{scope}/{context}/index.json"
            and o.key.count("/") == scope.count("/") + 2
            and o.last_modified < stale
        }
        mine = f"{scope}/{context}/groups/"
        for o in listed:
            orphan = (
                o.key.startswith(mine)
                and o.key[len(mine) :].removesuffix(".json") not in index.groups
                and o.last_modified < stale
            )
            if (
                orphan
                or o.key.rsplit("/index.json", 1)[0] in dead
                or any(o.key.startswith(d + "/groups/") for d in dead)
            ):
                await _delete(self.store, o.key)

    async def _update(
        self,
        where: str,
        index: _Index,
        window: Window,
        fresh: list[_Known],
        buckets: dict[int, _Bucket],
        used: dict[str, Profile | None],
        span: float,
    ) -> None:
        """Store the new groups and the objects' counts; drop what no later window can use.

        New objects of a slice that already has a group in this window join that group (a new
        group of both, the old one deleted): a window then holds about ``GROUPS_PER_WINDOW``
        groups however its runs fall on the slices, so the groups of a window stay in memory
        (``_MEMORY_GROUPS``) and a run merges a dozen profiles, not two per earlier run."""
        for k in fresh:
            index.objects[k.key] = k
        joined = {_slice(index, g, span): g for gid, g in index.groups.items() if gid in used}
        for slice_, bucket in sorted(buckets.items()):
            old = joined.pop(slice_, None)
            if old is not None:
                await asyncio.to_thread(bucket.join, index, old, used[old.id])
                del index.groups[old.id]
                self._memory.pop(f"{self.store.uri}/{where}/{old.id}", None)
                await _delete(self.store, f"{where}/groups/{old.id}.json")
            members, prof = bucket.members, bucket.profile
            gid = uuid.uuid4().hex[:16]
            if prof is not None:
                doc = await asyncio.to_thread(profile_to_statistics, prof)
                await self.store.put(
                    f"{where}/groups/{gid}.json", orjson.dumps(doc), content_type="application/json"
                )
                self._remember(f"{self.store.uri}/{where}/{gid}", prof)
            for k in members:
                k.group = gid
            index.groups[gid] = _Group(
                gid, [k.key for k in members], bucket.parse, list(bucket.columns),
                max((k.last or 0.0) for k in members), prof is not None,
            )  # fmt: skip
            self.last.groups_written += 1
        start = window.start.timestamp()
        dead = [g for g in index.groups.values() if _starts_before(index, g, start)]
        for g in dead:
            del index.groups[g.id]
            self._memory.pop(f"{self.store.uri}/{where}/{g.id}", None)
            await _delete(self.store, f"{where}/groups/{g.id}.json")
        horizon = start - 2 * (window.end - window.start).total_seconds() - 3600
        objects = [o for o in index.objects.values() if o.last is None or o.last >= horizon]
        objects.sort(key=lambda o: o.last or 0.0, reverse=True)
        index.objects = {o.key: o for o in objects[: self.max_entries]}
        for g in list(index.groups.values()):
            if not all(index.objects.get(k) is not None for k in g.members):
                del index.groups[g.id]
                await _delete(self.store, f"{where}/groups/{g.id}.json")
        doc = {"format": FORMAT, "updated": time.time(),
               "objects": [o.to_doc() for o in index.objects.values()],
               "groups": [g.to_doc() for g in index.groups.values()]}  # fmt: skip
        await self.store.put(
            f"{where}/index.json", orjson.dumps(doc), content_type="application/json"
        )

    async def _read_index(self, where: str) -> _Index:
        try:
            doc = orjson.loads(await self.store.get(f"{where}/index.json"))
            index = _Index()
            for o in doc["objects"]:
                index.objects[o["key"]] = _Known(**o)
            for g in doc["groups"]:
                p = g["parse"]
                index.groups[g["id"]] = _Group(
                    g["id"], list(g["members"]),
                    ParseStats(p["records"], p["rows"], p["failed"], dict(p["reasons"])),
                    list(g["columns"]), float(g["last"]), bool(g.get("has_profile", True)),
                )  # fmt: skip
            return index
        except StoreError as exc:  # the cache is advisory: a run goes on without it
            if exc.reason != "not_found":
                log.warning("profile cache %s unreadable (%s); profiling every object", where, exc)
            return _Index()
        except (ValueError, KeyError, TypeError) as exc:  # damaged: start afresh, not fatal
            log.warning("profile cache index %s/index.json unreadable (%s); rebuilding", where, exc)
            return _Index()

    async def _group_profile(self, where: str, gid: str) -> Profile | None:
        mem = self._memory.get(f"{self.store.uri}/{where}/{gid}")
        if mem is not None:
            self._memory.move_to_end(f"{self.store.uri}/{where}/{gid}")
            return mem
        try:
            body = await self.store.get(f"{where}/groups/{gid}.json")
            prof = await asyncio.to_thread(lambda: profile_from_statistics(orjson.loads(body)))
        except StoreError as exc:
            if exc.reason != "not_found":
                log.warning("profile cache group %s/%s unreadable (%s)", where, gid, exc)
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("profile cache group %s/%s unreadable (%s); re-reading", where, gid, exc)
            return None
        self._remember(f"{self.store.uri}/{where}/{gid}", prof)
        return prof

    def _remember(self, key: str, prof: Profile) -> None:
        self._memory[key] = prof
        self._memory.move_to_end(key)
        while len(self._memory) > _MEMORY_GROUPS:
            self._memory.popitem(last=False)


def _read_inside(k: _Known) -> ReadStats:
    read = ReadStats(objects=1, records=k.timed, bad_lines=k.bad_lines)
    read.bad_objects = int(k.bad_object)
    if k.bad_lines or k.bad_object:
        read.bad_keys = [k.key]
    read.saw_times(k.first, k.last)
    return read


def _slice(index: _Index, group: _Group, span: float) -> int:
    """The slice of the window a group's objects were batched in (that of its first record)."""
    firsts = [k.first or 0.0 for m in group.members if (k := index.objects.get(m)) is not None]
    return int(min(firsts, default=0.0) // span)


def _starts_before(index: _Index, group: _Group, start: float) -> bool:
    for key in group.members:
        k = index.objects.get(key)
        if k is None or (k.first is not None and k.first < start):
            return True
    return False


@dataclass
class _Bucket:
    """The new objects of one slice of the window, merged as they arrive."""

    members: list[_Known] = field(default_factory=list)
    profile: Profile | None = None
    parse: ParseStats = field(default_factory=ParseStats)
    columns: dict[str, None] = field(default_factory=dict)

    def add(self, known: list[_Known], part: Part) -> None:
        p, _read, stats, cols = part
        self.members.extend(known)
        if p is not None:
            self.profile = p if self.profile is None else self.profile.merge(p)
        self.parse.records += stats.records
        self.parse.rows += stats.rows
        self.parse.failed += stats.failed
        for reason, n in stats.reasons.items():
            self.parse.reasons[reason] = self.parse.reasons.get(reason, 0) + n
        self.columns.update(dict.fromkeys(cols))

    def join(self, index: _Index, group: _Group, prof: Profile | None) -> None:
        """Take in an existing group of the same slice (its members, profile and counts)."""
        self.add([index.objects[m] for m in group.members], (prof, ReadStats(), group.parse,
                 group.columns))  # fmt: skip


async def _delete(store: Store, key: str) -> None:
    try:
        await store.delete(key)
    except StoreError as exc:  # another replica got there first
        log.debug("profile cache: deleting %s: %s", key, exc)


def context_digest(
    baseline: Profile,
    names: Sequence[str],
    output_columns: Sequence[str],
    preprocessor: Any,
    target_model: str,
) -> str:
    """The digest of everything a capture object's partial profile depends on besides the
    object itself (see the module docstring)."""
    hook = (
        ""
        if preprocessor is None
        else f"{getattr(preprocessor, '__module__', '')}.{getattr(preprocessor, '__qualname__', repr(preprocessor))}"
    )
    h = hashlib.sha256()
    h.update(orjson.dumps({"format": FORMAT, "names": list(names), "outputs": list(output_columns),
                           "preprocessor": hook, "target_model": target_model}))  # fmt: skip
    h.update(baseline_fingerprint(baseline).encode())
    return h.hexdigest()[:24]


def baseline_fingerprint(baseline: Profile) -> str:
    """sha256 of the baseline's statistics.json (memoised per Profile object)."""
    found = _FINGERPRINTS.get(id(baseline))
    if found is not None and found[0] is baseline:
        return found[1]
    digest = hashlib.sha256(orjson.dumps(profile_to_statistics(baseline))).hexdigest()
    _FINGERPRINTS[id(baseline)] = (baseline, digest)
    return digest


def cache_scope(target: Target) -> str:
    """Where a target's partials live below the cache prefix."""
    t = target
    return (
        f"{t.endpoint}/{t.variant}/{t.target_model}"
        if t.target_model
        else f"{t.endpoint}/{t.variant}"
    )


def cache_context(target: Target) -> str:
    """:func:`context_digest` of a capture target, with ``run_window``'s parser settings."""
    names = [c for c in target.baseline.columns if c not in target.output_columns]
    return context_digest(
        target.baseline, names, target.output_columns, target.preprocessor, target.target_model
    )
