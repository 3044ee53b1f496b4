"""Where ground truth lives: ``[{prefix}/]{endpoint}/{variant}/yyyy/mm/dd/hh/<name>.jsonl``.

The hour is when the label was **collected** (received), not when the inference happened, as in
SageMaker. A label arrives after its prediction, so a run over the window ``[start, end)`` lists
the hours from ``start`` up to ``end + label_delay``: labels collected later than that are missed
by this run. Schedule model-quality runs with their window ending at least ``label_delay`` in the
past (SageMaker's examples use an end offset of ``-P1D``) so the labels have arrived.

The default delay is 24 hours: labels that come from a human or a downstream system within a day
are caught, and listing costs 24 more hour prefixes per run. The edges are hour-granular, since a
label line has no timestamp of its own.
"""

from __future__ import annotations

import datetime as dt
import uuid

from analyzer.groundtruth.records import Labels, LabelStats, read_labels
from analyzer.window import Window, hour_prefix
from modeltap.core.store.base import ObjectInfo, Store, join_key

DEFAULT_LABEL_DELAY = dt.timedelta(hours=24)


def label_key(endpoint: str, variant: str, received: dt.datetime, prefix: str = "") -> str:
    """A new object key for labels received at ``received``: ``.../hh/MM-SS-mmm-<uuid>.jsonl``.

    The name sorts by receipt time within the hour, so key order is write order (last wins).
    """
    t = received.astimezone(dt.UTC)
    name = f"{t:%M-%S}-{t.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    return join_key(prefix, hour_prefix(endpoint, variant, t) + name)


def label_window(
    window: Window, label_delay: dt.timedelta = DEFAULT_LABEL_DELAY, now: dt.datetime | None = None
) -> Window | None:
    """The collection-time window ``[start, end + label_delay)``, cut at ``now`` when given.

    None when nothing can have been collected yet (``now`` before the window start).
    """
    if label_delay < dt.timedelta(0):
        raise ValueError(f"label_delay must not be negative, got {label_delay}")
    end = window.end + label_delay
    if now is not None:
        # Hours after the current one hold nothing yet; skip their LIST calls.
        end = min(end, now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
                  + dt.timedelta(hours=1))  # fmt: skip
    if end <= window.start:
        return None
    return Window(window.start, end)


async def list_labels(
    store: Store,
    endpoint: str,
    variant: str,
    window: Window,
    *,
    label_delay: dt.timedelta = DEFAULT_LABEL_DELAY,
    prefix: str = "",
    now: dt.datetime | None = None,
) -> list[ObjectInfo]:
    """The ground-truth objects collected in the hours of :func:`label_window`, in key order."""
    collected = label_window(window, label_delay, now)
    if collected is None:
        return []
    found: list[ObjectInfo] = []
    for hour in collected.hours():
        key_prefix = join_key(prefix, hour_prefix(endpoint, variant, hour))
        found.extend([o async for o in store.list(key_prefix)])
    return found


async def load_labels(
    store: Store,
    endpoint: str,
    variant: str,
    window: Window,
    *,
    label_delay: dt.timedelta = DEFAULT_LABEL_DELAY,
    prefix: str = "",
    now: dt.datetime | None = None,
) -> tuple[Labels, LabelStats]:
    """Every label collected for a run over ``window``, in write order (for last-write-wins)."""
    objects = await list_labels(
        store, endpoint, variant, window, label_delay=label_delay, prefix=prefix, now=now
    )
    return await read_labels(store, objects)
