"""User hooks, as SageMaker's record_preprocessor_script and post_analytics_processor_script.

A hook is named ``package.module:function`` or ``/path/to/script.py:function``.

- Preprocessor: ``preprocess_handler(inference_record)`` (or ``(inference_record, logger)``)
  returns a flat dict (keys become columns; digit keys such as ``"0"``, ``"01"`` are positions and
  take the baseline's names in order), a list of such dicts (several rows), or ``[]``/``None`` to
  drop the record (custom sampling). ``inference_record`` has ``endpoint_input``,
  ``endpoint_output`` (each with ``data``, ``encoding``, ``observedContentType``, ``mode``, and
  ``decoded()`` for the raw bytes) and ``event_metadata`` (``event_id``, ``event_time``,
  ``inference_id``, ``custom_attribute``). A hook that raises on a record has that record counted
  (``preprocessor_error``) and skipped; the run goes on.
- Post-analytics: ``postprocess_handler(run)`` gets the run summary (a dict) after a run that did
  not fail and may return a dict of extra numbers, added to ``run.json`` under ``custom``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from analyzer.payloads import ParseStats, _to_arrow
from modeltap.core.errors import ConfigError
from modeltap.core.record import decode_payload

log = logging.getLogger("analyzer.hooks")


def load_hook(spec: str) -> Callable[..., Any]:
    """Import ``module:function`` or ``/path/script.py:function``; ConfigError when it fails."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConfigError(
            f"hook {spec!r}: expected 'package.module:function' or '/path/script.py:function'"
        )
    try:
        if target.endswith(".py"):
            path = Path(target)
            module_spec = importlib.util.spec_from_file_location(f"modeltap_hook_{path.stem}", path)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"hook {spec!r}: cannot load {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except (ImportError, OSError, SyntaxError) as exc:
        raise ConfigError(f"hook {spec!r}: cannot import {target}: {exc}") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"hook {spec!r}: {target} has no function {name!r}")
    return fn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Payload:
    data: str
    encoding: str
    observedContentType: str
    mode: str

    def decoded(self) -> bytes:
        return decode_payload({"data": self.data, "encoding": self.encoding})


@dataclass(frozen=True)
class EventMetadata:
    event_id: str | None
    event_time: str | None
    inference_id: str | None
    custom_attribute: Any


@dataclass(frozen=True)
class InferenceRecord:
    endpoint_input: Payload | None
    endpoint_output: Payload | None
    event_metadata: EventMetadata
    raw: dict[str, Any]


def _payload(doc: Any) -> Payload | None:
    if not isinstance(doc, dict):
        return None
    return Payload(
        str(doc.get("data", "")), str(doc.get("encoding", "")), str(doc.get("observedContentType", "")),
        str(doc.get("mode", "")),
    )  # fmt: skip


def inference_record(rec: dict[str, Any]) -> InferenceRecord:
    capture = rec.get("captureData") or {}
    meta = rec.get("eventMetadata") or {}
    return InferenceRecord(
        endpoint_input=_payload(capture.get("endpointInput")),
        endpoint_output=_payload(capture.get("endpointOutput")),
        event_metadata=EventMetadata(
            meta.get("eventId"),
            meta.get("inferenceTime"),
            meta.get("inferenceId"),
            meta.get("customAttributes"),
        ),
        raw=rec,
    )


class Preprocessor:
    """Applies a preprocess_handler to records and builds the window's columns from its rows."""

    def __init__(self, fn: Callable[..., Any], names: Sequence[str]) -> None:
        self._fn = fn
        self._names = list(names)
        self._with_logger = len(inspect.signature(fn).parameters) >= 2

    def _column(self, key: str) -> str:
        if key.isdigit():
            i = int(key)
            return self._names[i] if i < len(self._names) else f"_c{i}"
        return key

    def parse(self, records: Sequence[dict[str, Any]], stats: ParseStats | None = None) -> pa.Table:
        stats = stats if stats is not None else ParseStats()
        rows: list[dict[str, Any]] = []
        for rec in records:
            stats.records += 1
            try:
                out = (
                    self._fn(inference_record(rec), log)
                    if self._with_logger
                    else self._fn(inference_record(rec))
                )
            except Exception as exc:  # a user's bug on one record must not stop the run
                log.debug("preprocessor failed on a record: %s", exc)
                stats.fail("preprocessor_error")
                continue
            if not out:
                stats.fail("dropped_by_preprocessor")
                continue
            for row in out if isinstance(out, list) else [out]:
                if not isinstance(row, dict):
                    stats.fail("preprocessor_error")
                    continue
                rows.append({self._column(str(k)): v for k, v in row.items()})
        if not rows:
            return pa.table({n: pa.array([], pa.string()) for n in self._names})
        columns: dict[str, list[Any]] = {}
        for i, row in enumerate(rows):
            for k, v in row.items():
                columns.setdefault(k, [None] * len(rows))[i] = v
        stats.rows += len(rows)
        return pa.table({k: _to_arrow(v) for k, v in columns.items()})
