"""Write capture records (SageMaker's data-capture JSON Lines) straight into a local store, for
tests whose subject is the monitor rather than the sidecar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import orjson


def _csv(values: Sequence[object]) -> str:
    return ",".join(str(v) for v in values)


def write_captures(
    store: Path,
    endpoint: str,
    inputs: Sequence[Sequence[object]],
    outputs: Sequence[Sequence[object]] | None,
    start: dt.datetime,
    *,
    variant: str = "AllTraffic",
    step: dt.timedelta = dt.timedelta(milliseconds=10),
) -> list[str]:
    """One record per row (CSV in, CSV out), ``inferenceId`` ``r<i>``, inference times from
    ``start`` by ``step``, in one object of the hour of ``start``; the ids, in order."""
    lines, ids = [], []
    for i, row in enumerate(inputs):
        when = start + i * step
        capture: dict[str, object] = {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                              "data": _csv(row), "encoding": "CSV"},
        }  # fmt: skip
        if outputs is not None:
            capture["endpointOutput"] = {"observedContentType": "text/csv", "mode": "OUTPUT",
                                         "data": _csv(outputs[i]), "encoding": "CSV"}  # fmt: skip
        ids.append(f"r{i}")
        meta = {"eventId": f"e{i}", "inferenceId": f"r{i}",
                "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}  # fmt: skip
        record = {"captureData": capture, "eventMetadata": meta, "eventVersion": "0"}
        lines.append(orjson.dumps(record))
    folder = store / endpoint / variant / f"{start:%Y/%m/%d/%H}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"captures-{start:%M%S}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return ids
