"""The capture record: SageMaker's data-capture JSON Lines format, built off the request path.

The request handler only fills a :class:`CaptureItem` (references to bytes it already holds); the
spool writer turns items into records with :func:`encode_record`. The analyzer reads records with
:func:`decode_payload`, so the format is defined once, here.

A record::

    {"captureData": {"endpointInput": {...}, "endpointOutput": {...}},
     "eventMetadata": {"eventId": uuid, "inferenceTime": "...Z", "inferenceId": "..."},
     "eventVersion": "0",
     "modeltap": {"status": 200, "modelLatencyMs": 1.2, "method": "POST", "path": "/invocations",
                  "targetModel": "...", "requestHeaders": {"x-tenant": "a"},
                  "responseHeaders": {"x-model-version": "3"}}}

``modeltap`` holds what SageMaker lacks; SageMaker's own fields are never changed. Headers appear
only when ``capture.headers`` allow-lists them (lower-case names; repeated fields joined with
``", "``), and only those that were present. Payloads pass the configured redaction
(the sidecar's ``sidecar.redact``) before they are written; one that cannot be redacted makes
:func:`encode_record` raise :class:`~modeltap.core.errors.RedactionError`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import os
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from modeltap.core.errors import RecordError


class Redactor(Protocol):
    """What :func:`encode_record` asks of the sidecar's redaction (``sidecar.redact.Redactor``):
    the rules for one side (falsy when there are none) and their application to a payload."""

    def rules(self, mode: str) -> Any: ...

    def apply(self, rules: Any, text: str | None, encoding: str) -> str: ...


EVENT_VERSION = "0"
CSV, JSON, BASE64 = "CSV", "JSON", "BASE64"
_SEEN_MAX = 256


@dataclass(slots=True)
class CaptureItem:
    """What the request path hands to the spool writer: references, no serialization."""

    inference_time: float
    method: str
    path: str
    status: int
    model_latency_s: float
    inference_id: str | None
    target_model: str | None
    input_body: bytes | None
    input_content_type: str | None
    output_body: bytes | None
    output_content_type: str | None
    request_headers: dict[str, str] | None = None
    response_headers: dict[str, str] | None = None


class PayloadEncoder:
    """Chooses a payload's encoding from its content type (SageMaker's CaptureContentTypeHeader)."""

    def __init__(self, csv_types: tuple[str, ...], json_types: tuple[str, ...]) -> None:
        self._csv = frozenset(t.lower() for t in csv_types)
        self._json = frozenset(t.lower() for t in json_types)
        self._seen: dict[str, str] = {}  # content type -> encoding: a service sends a few

    def encoding_for(self, content_type: str | None) -> str:
        if not content_type:
            return BASE64
        known = self._seen.get(content_type)
        if known is not None:
            return known
        main = content_type.split(";", 1)[0].strip().lower()
        encoding = CSV if main in self._csv else JSON if main in self._json else BASE64
        if len(self._seen) < _SEEN_MAX:  # bounded: clients choose what they send
            self._seen[content_type] = encoding
        return encoding

    def payload(
        self,
        body: bytes,
        content_type: str | None,
        mode: str,
        redactor: Redactor | None = None,
    ) -> dict[str, str]:
        encoding = self.encoding_for(content_type)
        data: str | None = None
        if encoding != BASE64:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                encoding = BASE64
        if redactor is not None and body:
            rules = redactor.rules(mode)
            if rules:
                data = redactor.apply(rules, data, encoding)
        if data is None:
            data = base64.b64encode(body).decode("ascii")
        return {
            "observedContentType": content_type or "",
            "mode": mode,
            "data": data,
            "encoding": encoding,
        }


def format_time(epoch_seconds: float) -> str:
    """ISO-8601 UTC to the second with a Z suffix, as SageMaker writes inferenceTime."""
    return _format_second(int(epoch_seconds // 1))


@functools.lru_cache(maxsize=8)
def _format_second(second: int) -> str:  # records of one second share their timestamp
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# RFC 9562 version 4: the high nibble of byte 6 is 4, the two high bits of byte 8 are 10.
_VERSION_4 = bytes.maketrans(bytes(range(256)), bytes((b & 0x0F) | 0x40 for b in range(256)))
_VARIANT = bytes.maketrans(bytes(range(256)), bytes((b & 0x3F) | 0x80 for b in range(256)))


def new_event_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` gives them, from one
    ``os.urandom`` call (the writer names a whole batch at once)."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def new_event_id() -> str:
    """A random (version 4) UUID as text."""
    return new_event_ids(1)[0]


def encode_record(
    item: CaptureItem,
    encoder: PayloadEncoder,
    event_id: str | None = None,
    redactor: Redactor | None = None,
) -> bytes:
    """Serialize one item as a JSON Lines record (with the trailing newline).

    Raises RedactionError when ``redactor`` cannot read a payload it has rules for.
    """
    capture: dict[str, dict[str, str]] = {}
    if item.input_body is not None:
        capture["endpointInput"] = encoder.payload(
            item.input_body, item.input_content_type, "INPUT", redactor
        )
    if item.output_body is not None:
        capture["endpointOutput"] = encoder.payload(
            item.output_body, item.output_content_type, "OUTPUT", redactor
        )
    meta = {
        "eventId": event_id or new_event_id(),
        "inferenceTime": format_time(item.inference_time),
    }
    if item.inference_id is not None:
        meta["inferenceId"] = item.inference_id
    extra: dict[str, object] = {
        "status": item.status,
        "modelLatencyMs": round(item.model_latency_s * 1000.0, 3),
        "method": item.method,
        "path": item.path,
    }
    if item.target_model is not None:
        extra["targetModel"] = item.target_model
    if item.request_headers:
        extra["requestHeaders"] = item.request_headers
    if item.response_headers:
        extra["responseHeaders"] = item.response_headers
    record = {
        "captureData": capture,
        "eventMetadata": meta,
        "eventVersion": EVENT_VERSION,
        "modeltap": extra,
    }
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def decode_payload(payload: dict[str, object]) -> bytes:
    """Return the raw bytes of an endpointInput/endpointOutput payload."""
    data = payload.get("data")
    encoding = payload.get("encoding")
    if not isinstance(data, str):
        raise RecordError("payload has no string 'data'")
    if encoding in (CSV, JSON):
        return data.encode("utf-8")
    if isinstance(encoding, str) and encoding.upper() == BASE64:
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise RecordError(f"payload is not valid base64: {exc}") from exc
    raise RecordError(f"unknown payload encoding {encoding!r}")
