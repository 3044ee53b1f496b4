"""Shared by the harnesses: the repository on sys.path, and JSON documents from fuzzer bytes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def json_or_text(data: bytes) -> Any:
    """The bytes as a JSON value when they are JSON, else as text (both are worth feeding)."""
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")
