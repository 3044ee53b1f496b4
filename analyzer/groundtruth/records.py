"""Ground-truth records: SageMaker's label JSON Lines, one label per line.

A line::

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<the capture's inferenceId, else its eventId>"},
     "eventVersion": "0"}

``encoding`` is ``CSV`` (``data`` is the label text; the default when absent), ``JSON`` (``data``
is a JSON value, or a string holding JSON text as capture payloads do) or ``BASE64`` (``data`` is
base64 of UTF-8 CSV text). Labels become text: JSON numbers as written, JSON booleans as the
binary classes ``1``/``0`` (what a probability threshold produces), a JSON list of scalars as one
CSV line (one label per row of a batched prediction, see :mod:`analyzer.groundtruth.merge`).

Malformed input never raises: a bad line is counted under one reason (:data:`REASONS`), a whole
unreadable object (damaged gzip) is counted as a bad object. Last write wins: when an id has
several labels, :meth:`Labels.latest` keeps the last in object order (key order, which is receipt
order for objects the ingest endpoint writes) and then line order, so a correction is just a later
label.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.window import decode_object
from modeltap.core.errors import StoreError
from modeltap.core.store.base import ObjectInfo, Store

log = logging.getLogger(__name__)

BAD_JSON = "bad_json"  # not UTF-8 JSON
NOT_OBJECT = "not_object"  # JSON, but not an object
MISSING_EVENT_ID = "missing_event_id"  # no non-empty string eventMetadata.eventId
MISSING_DATA = "missing_data"  # no groundTruthData.data, or it is null or empty
BAD_ENCODING = "bad_encoding"  # unknown encoding, bad base64, base64 of non-UTF-8 bytes
BAD_LABEL = "bad_label"  # JSON data that is not JSON text, an object, or a nested list
REASONS = (BAD_JSON, NOT_OBJECT, MISSING_EVENT_ID, MISSING_DATA, BAD_ENCODING, BAD_LABEL)


@dataclass
class LabelStats:
    """What parsing ground truth found; ``errors`` keeps the first few ``(line, reason)``."""

    objects: int = 0
    lines: int = 0
    labels: int = 0
    bad_objects: int = 0
    bad_lines: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    bad_keys: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def fail(self, line: int, reason: str, max_errors: int) -> None:
        self.bad_lines += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.errors) < max_errors:
            self.errors.append((line, reason))

    def merge(self, other: LabelStats) -> None:
        self.objects += other.objects
        self.lines += other.lines
        self.labels += other.labels
        self.bad_objects += other.bad_objects
        self.bad_lines += other.bad_lines
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        self.bad_keys.extend(other.bad_keys)


@dataclass(frozen=True)
class Labels:
    """Parallel Arrow string columns ``event_id`` and ``label``, in write order."""

    event_id: pa.Array
    label: pa.Array

    def __len__(self) -> int:
        return len(self.event_id)

    @classmethod
    def empty(cls) -> Labels:
        return cls(pa.array([], pa.string()), pa.array([], pa.string()))

    @classmethod
    def from_lists(cls, event_ids: Sequence[str], labels: Sequence[str]) -> Labels:
        return cls(pa.array(event_ids, pa.string()), pa.array(labels, pa.string()))

    @classmethod
    def concat(cls, parts: Iterable[Labels]) -> Labels:
        """Join parts in the given order (object order, for last-write-wins)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            pa.concat_arrays([p.event_id for p in parts]),
            pa.concat_arrays([p.label for p in parts]),
        )

    def latest(self) -> tuple[Labels, int]:
        """One label per id, the last written; also how many earlier labels were overridden.

        Hash-based in Arrow: in the reversed columns, an element is kept when the first index of
        its id is its own position (so the last write of each id survives), in original order.
        """
        n = len(self)
        if n < 2:
            return self, 0
        rev = self.event_id[::-1]
        first = pc.index_in(rev, value_set=rev).to_numpy(zero_copy_only=False)
        keep_rev = first == np.arange(n)
        keep = np.flatnonzero(keep_rev[::-1])  # original positions, ascending
        if len(keep) == n:
            return self, 0
        take = pa.array(keep)
        return Labels(self.event_id.take(take), self.label.take(take)), n - len(keep)


def label_text(value: Any) -> str | None:
    """A JSON scalar label as text; None for null, objects and nested lists."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list) and value:
        parts = [label_text(v) for v in value if not isinstance(v, list | dict)]
        if len(parts) != len(value) or any(p is None for p in parts):
            return None
        return ",".join(_csv_field(p) for p in parts if p is not None)
    return None


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def parse_line(line: bytes) -> tuple[str, str] | str:
    """``(event_id, label)`` for a good line, else the reason it is bad."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return BAD_JSON
    if not isinstance(rec, dict):
        return NOT_OBJECT
    meta = rec.get("eventMetadata")
    event_id = meta.get("eventId") if isinstance(meta, dict) else None
    if not isinstance(event_id, str) or not event_id:
        return MISSING_EVENT_ID
    gt = rec.get("groundTruthData")
    if not isinstance(gt, dict) or gt.get("data") in (None, ""):
        return MISSING_DATA
    data = gt["data"]
    encoding = gt.get("encoding", "CSV")
    encoding = encoding.upper() if isinstance(encoding, str) else encoding
    if encoding == "CSV":
        if not isinstance(data, str):
            return BAD_ENCODING
        text = data.strip()
    elif encoding == "BASE64":
        if not isinstance(data, str):
            return BAD_ENCODING
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return BAD_ENCODING
    elif encoding == "JSON":
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                return BAD_LABEL
        if data is None:
            return MISSING_DATA
        found = label_text(data)
        if found is None:
            return BAD_LABEL
        text = found
    else:
        return BAD_ENCODING
    if not text:
        return MISSING_DATA
    return event_id, text


def parse_labels(
    data: bytes, key: str = "<body>", *, max_errors: int = 10
) -> tuple[Labels, LabelStats]:
    """Parse one ground-truth object (JSON Lines, optionally gzip); bad lines are counted."""
    stats = LabelStats(objects=1)
    try:
        text = decode_object(key, data)
    except ValueError as exc:
        log.warning("skipping ground-truth object %s: %s", key, exc)
        stats.bad_objects = 1
        stats.bad_keys.append(key)
        return Labels.empty(), stats
    ids: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stats.lines += 1
        found = parse_line(line)
        if isinstance(found, str):
            stats.fail(number, found, max_errors)
            continue
        ids.append(found[0])
        labels.append(found[1])
    if stats.bad_lines:
        stats.bad_keys.append(key)
        log.warning("ground-truth object %s: %d bad lines %s", key, stats.bad_lines, stats.reasons)
    stats.labels = len(ids)
    return Labels.from_lists(ids, labels), stats


async def read_labels(store: Store, objects: Iterable[ObjectInfo]) -> tuple[Labels, LabelStats]:
    """Read and parse ground-truth objects in the given order (keep key order for last-wins)."""
    parts: list[Labels] = []
    total = LabelStats()
    for info in objects:
        try:
            data = await store.get(info.key)
        except StoreError as exc:
            if exc.reason != "not_found":
                raise
            log.warning("ground-truth object %s vanished after listing", info.key)
            total.objects += 1
            total.bad_objects += 1
            total.bad_keys.append(info.key)
            continue
        labels, stats = parse_labels(data, info.key)
        parts.append(labels)
        total.merge(stats)
    return Labels.concat(parts), total
