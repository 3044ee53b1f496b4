from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import orjson
import pytest

from analyzer.groundtruth.layout import (
    DEFAULT_LABEL_DELAY,
    label_key,
    label_window,
    list_labels,
    load_labels,
)
from analyzer.window import Window
from modeltap.core.store.local import LocalStore

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_key_is_collection_hour_and_sortable_name() -> None:
    received = dt.datetime(2024, 3, 1, 23, 7, 9, 45_600, tzinfo=UTC)
    key = label_key("ep", "AllTraffic", received, prefix="gt")
    assert re.fullmatch(r"gt/ep/AllTraffic/2024/03/01/23/07-09-045-[0-9a-f-]{36}\.jsonl", key)
    assert label_key("ep", "v", received).startswith("ep/v/2024/03/01/23/07-09-045-")
    other_zone = received.astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert label_key("ep", "v", other_zone).startswith("ep/v/2024/03/01/23/")


def test_label_window_extends_by_the_delay_and_stops_at_now() -> None:
    w = Window(at(0), at(1))
    assert dt.timedelta(hours=24) == DEFAULT_LABEL_DELAY
    assert label_window(w) == Window(at(0), at(25))
    assert label_window(w, dt.timedelta(0)) == w
    # Cut at the end of the current hour: later hours hold nothing yet.
    assert label_window(w, now=at(3.5)) == Window(at(0), at(4))
    assert label_window(w, now=at(-2)) is None
    with pytest.raises(ValueError, match="negative"):
        label_window(w, dt.timedelta(hours=-1))


async def put_label(store: LocalStore, hour: dt.datetime, event_id: str, label: str) -> str:
    key = label_key("ep", "v", hour, prefix="gt")
    line = orjson.dumps(
        {
            "groundTruthData": {"data": label, "encoding": "CSV"},
            "eventMetadata": {"eventId": event_id},
        }
    )
    await store.put(key, line + b"\n", content_type="application/jsonlines")
    return key


async def test_listing_covers_window_plus_delay_by_hour(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    before = await put_label(store, at(-1), "early", "0")  # collected before the window
    k0 = await put_label(store, at(0.5), "a", "1")
    k1 = await put_label(store, at(3.2), "b", "0")  # late label, inside the delay
    k2 = await put_label(store, at(5.9), "c", "1")  # last hour of the delay
    after = await put_label(store, at(6.0), "d", "1")  # beyond the delay
    await store.put("other/v/2024/03/01/10/x.jsonl", b"{}", content_type="x")  # other endpoint
    await store.put("ep/v/2024/03/01/10/x.jsonl", b"{}", content_type="x")  # no prefix
    w = Window(at(0), at(1))
    keys = [
        o.key
        for o in await list_labels(
            store, "ep", "v", w, label_delay=dt.timedelta(hours=5), prefix="gt"
        )
    ]
    assert keys == [k0, k1, k2]
    assert before not in keys and after not in keys
    # Window edges inside hours list whole hours (labels carry no time of their own).
    w_mid = Window(at(0.75), at(0.8))
    keys = [
        o.key
        for o in await list_labels(
            store, "ep", "v", w_mid, label_delay=dt.timedelta(0), prefix="gt"
        )
    ]
    assert keys == [k0]
    # now cuts the listing.
    keys = [o.key for o in await list_labels(store, "ep", "v", w, prefix="gt", now=at(4))]
    assert keys == [k0, k1]


async def test_load_labels_reads_in_write_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await put_label(store, at(0.1), "a", "0")
    await put_label(store, at(2.0), "a", "1")  # a correction, collected later
    await put_label(store, at(0.2), "b", "1")
    labels, stats = await load_labels(store, "ep", "v", Window(at(0), at(1)), prefix="gt")
    assert stats.objects == 3 and stats.labels == 3
    latest, overridden = labels.latest()
    assert overridden == 1
    assert dict(zip(latest.event_id.to_pylist(), latest.label.to_pylist(), strict=True)) == {
        "a": "1", "b": "1",
    }  # fmt: skip
