"""Read capture records back from a local store directory."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson


def read_records(store: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every record under ``store`` as (key relative to the store, record), in key order."""
    out = []
    for path in sorted(p for p in store.rglob("*.jsonl*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        key = path.relative_to(store).as_posix()
        out.extend((key, orjson.loads(line)) for line in data.splitlines() if line)
    return out
