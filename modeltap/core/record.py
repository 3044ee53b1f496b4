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
                  "responseHeaders": {"x-model-version": "3"},
                  "stream": {"timeToFirstByteMs": 41.2, "timeToLastByteMs": 2210.5, "chunks": 200,
                             "bytes": 4000, "end": "complete"},
                  "genai": {"gen_ai.response.model": "...", ...}}}

``modeltap`` holds what SageMaker lacks; SageMaker's own fields are never changed. Headers appear
only when ``capture.headers`` allow-lists them (lower-case names; repeated fields joined with
``", "``), and only those that were present. ``stream`` is there for a response body forwarded as
it arrived (an event stream, or a body without Content-Length or too large to hold): times are
from the request sent to the model server to its first and last body byte; ``chunks`` counts the
reads from the model server (the network's pieces, about one per event when the model is slower
than the network); ``end`` is ``complete``, ``client_disconnected`` (the client hung up: the
model server's connection was closed and the record holds what was forwarded) or
``upstream_failed``; ``truncated: true`` when an event stream outgrew ``capture.max_payload_bytes``
(the record holds its first bytes, cut at a line end; ``bytes`` is the whole size).
``genai`` holds what the sidecar's ``sidecar.genai`` reads from an OpenAI-compatible exchange. Event-stream
content types (``capture.stream_content_types``) are written as UTF-8 text with encoding ``TEXT``.
Payloads pass the configured redaction
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
from typing import Any, Final, Protocol

import orjson

from modeltap.core.errors import RecordError
from modeltap.core.jsonesc import (
    INVALID,
    NO_ROOM,
    escape_between,
    put,
    round3_text,
    uuid4_texts,
)


class Redactor(Protocol):
    """What :func:`encode_record` asks of the sidecar's redaction (``sidecar.redact.Redactor``):
    the rules for one side (falsy when there are none) and their application to a payload."""

    def rules(self, mode: str) -> Any: ...

    def apply(self, rules: Any, text: str | None, encoding: str) -> str: ...


EVENT_VERSION: Final = "0"
CSV: Final = "CSV"
JSON: Final = "JSON"
BASE64: Final = "BASE64"
TEXT: Final = "TEXT"
STREAM_END_COMPLETE = "complete"
STREAM_END_CLIENT_GONE = "client_disconnected"
STREAM_END_UPSTREAM_FAILED = "upstream_failed"
_SEEN_MAX = 256


@dataclass(slots=True)
class StreamTiming:
    """How a response body streamed: seconds from the request sent to the model server."""

    first_byte_s: float
    last_byte_s: float
    chunks: int
    size: int  # bytes forwarded
    end: str  # STREAM_END_*
    truncated: bool = False
    chunk_ends: list[int] | None = None  # kept-body offset at the end of each chunk (genai)
    chunk_times: list[float] | None = None  # arrival of each chunk (genai)

    def as_record(self) -> dict[str, object]:
        out: dict[str, object] = {
            "timeToFirstByteMs": round(self.first_byte_s * 1000.0, 3),
            "timeToLastByteMs": round(self.last_byte_s * 1000.0, 3),
            "chunks": self.chunks,
            "bytes": self.size,
            "end": self.end,
        }
        if self.truncated:
            out["truncated"] = True
        return out


@dataclass(slots=True)
class CaptureItem:
    """What the request path hands to the spool writer: references, no serialization.

    ``__init__`` is written out: the one ``dataclass`` generates is interpreted even where this
    module is compiled (mypyc keeps generated methods), and building an item with it was about
    a twentieth of the event loop's time per captured 1 KB request. Written here, it compiles.
    """

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
    request_headers: dict[str, str] | None
    response_headers: dict[str, str] | None
    stream: StreamTiming | None
    # An OpenAI-compatible exchange (genai.paths): the writer reads it for metrics and, when
    # ``record`` (it was sampled), for the record's ``genai`` section. Unsampled ones are only
    # read, never written.
    genai: bool
    record: bool
    input_recorded: bool  # False: the body is there for genai only (capture.modes)
    output_recorded: bool
    genai_fields: dict[str, object] | None

    def __init__(
        self,
        inference_time: float,
        method: str,
        path: str,
        status: int,
        model_latency_s: float,
        inference_id: str | None,
        target_model: str | None,
        input_body: bytes | None,
        input_content_type: str | None,
        output_body: bytes | None,
        output_content_type: str | None,
        request_headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
        stream: StreamTiming | None = None,
        genai: bool = False,
        record: bool = True,
        input_recorded: bool = True,
        output_recorded: bool = True,
        genai_fields: dict[str, object] | None = None,
    ) -> None:
        self.inference_time = inference_time
        self.method = method
        self.path = path
        self.status = status
        self.model_latency_s = model_latency_s
        self.inference_id = inference_id
        self.target_model = target_model
        self.input_body = input_body
        self.input_content_type = input_content_type
        self.output_body = output_body
        self.output_content_type = output_content_type
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.stream = stream
        self.genai = genai
        self.record = record
        self.input_recorded = input_recorded
        self.output_recorded = output_recorded
        self.genai_fields = genai_fields


class PayloadEncoder:
    """Chooses a payload's encoding from its content type (SageMaker's CaptureContentTypeHeader)."""

    def __init__(
        self,
        csv_types: tuple[str, ...],
        json_types: tuple[str, ...],
        text_types: tuple[str, ...] = (),
    ) -> None:
        self._csv = frozenset(t.lower() for t in csv_types)
        self._json = frozenset(t.lower() for t in json_types)
        self._text = frozenset(t.lower() for t in text_types)
        self._seen: dict[str, str] = {}  # content type -> encoding: a service sends a few

    def encoding_for(self, content_type: str | None) -> str:
        if not content_type:
            return BASE64
        known = self._seen.get(content_type)
        if known is not None:
            return known
        main = content_type.split(";", 1)[0].strip().lower()
        if main in self._csv:
            encoding = CSV
        elif main in self._json:
            encoding = JSON
        else:
            encoding = TEXT if main in self._text else BASE64
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


def new_event_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` gives them, from one
    ``os.urandom`` call (the writer names a whole batch at once), formatted by
    :func:`~modeltap.core.jsonesc.uuid4_texts` (in C in the compiled build)."""
    return _uuid4_texts(os.urandom(16 * n))


def new_event_id() -> str:
    """A random (version 4) UUID as text."""
    return new_event_ids(1)[0]


def _sides(item: CaptureItem) -> list[tuple[str, str, bytes, str | None]]:
    """The payloads a record holds, in record order: (key, mode, body, content type)."""
    sides: list[tuple[str, str, bytes, str | None]] = []
    if item.input_body is not None and item.input_recorded:
        sides.append(("endpointInput", "INPUT", item.input_body, item.input_content_type))
    if item.output_body is not None and item.output_recorded:
        out = item.output_body
        if item.stream is not None and item.stream.truncated:
            whole = out.rfind(b"\n") + 1  # whole lines: each kept event stays readable
            out = out[:whole]
        sides.append(("endpointOutput", "OUTPUT", out, item.output_content_type))
    return sides


def _record(item: CaptureItem, capture: dict[str, dict[str, str]], event_id: str | None) -> bytes:
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
    if item.stream is not None:
        extra["stream"] = item.stream.as_record()
    if item.genai_fields:
        extra["genai"] = item.genai_fields
    record = {
        "captureData": capture,
        "eventMetadata": meta,
        "eventVersion": EVENT_VERSION,
        "modeltap": extra,
    }
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def encode_record(
    item: CaptureItem,
    encoder: PayloadEncoder,
    event_id: str | None = None,
    redactor: Redactor | None = None,
) -> bytes:
    """Serialize one item as a JSON Lines record (with the trailing newline).

    Raises RedactionError when ``redactor`` cannot read a payload it has rules for.
    """
    capture = {
        key: encoder.payload(body, content_type, mode, redactor)
        for key, mode, body, content_type in _sides(item)
    }
    return _record(item, capture, event_id)


# A record's fixed pieces, as bytes (see _record for the order of the keys).
_OPEN: Final = b'{"captureData":{'
_AFTER_CAPTURE: Final = b'},"eventMetadata":{"eventId":"'
_TIME: Final = b'","inferenceTime":"'
_INFERENCE_ID: Final = b'","inferenceId":'  # after the time's closing quote: it closes it
_META_END: Final = b'"},"eventVersion":"' + EVENT_VERSION.encode() + b'","modeltap":{"status":'
_ID_META_END: Final = b'},"eventVersion":"' + EVENT_VERSION.encode() + b'","modeltap":{"status":'
_LATENCY: Final = b',"modelLatencyMs":'
_METHOD: Final = b',"method":'
_PATH: Final = b',"path":'
_TARGET_MODEL: Final = b',"targetModel":'
_REQUEST_HEADERS: Final = b',"requestHeaders":'
_RESPONSE_HEADERS: Final = b',"responseHeaders":'
_STREAM: Final = b',"stream":'
_GENAI: Final = b',"genai":'
_CLOSE: Final = b"}}\n"
_ENCODING_TAIL: Final = {
    e: b'","encoding":"' + e.encode() + b'"}' for e in (CSV, JSON, BASE64, TEXT)
}
_CACHED_MAX: Final = 256
# JSON texts of the strings records repeat (methods, paths, content types, targets): bounded, as
# clients choose them.
_json_texts: Final[dict[str, bytes]] = {}
# A side's head up to its data's opening quote (with what comes before it: the record's opening
# when it is the first side, a comma otherwise), by content type, for each place a side can be.
_INPUT_HEADS: Final[dict[str | None, bytes]] = {}
_OUTPUT_FIRST_HEADS: Final[dict[str | None, bytes]] = {}
_OUTPUT_HEADS: Final[dict[str | None, bytes]] = {}
# The C functions as native statics of the compiled module (a global is a dict look-up per use).
_put_parts: Final = put
_escape_between: Final = escape_between
_round3: Final = round3_text
_uuid4_texts: Final = uuid4_texts
_dumps: Final = orjson.dumps
_BASE64_TAIL: Final = _ENCODING_TAIL[BASE64]
# The last second formatted, as one (second, text) pair (replaced whole: safe across threads).
_last_time: Final[list[tuple[int, str]]] = [(-1, "")]


def _json_text(text: str) -> bytes:
    """``text`` as orjson writes it (quoted, escaped), cached."""
    known = _json_texts.get(text)
    if known is not None:
        return known
    out = orjson.dumps(text)
    if len(_json_texts) < _CACHED_MAX:
        _json_texts[text] = out
    return out


def _side_head(
    heads: dict[str | None, bytes], before: bytes, key: str, mode: str, content_type: str | None
) -> bytes:
    known = heads.get(content_type)
    if known is not None:
        return known
    out = b"".join(
        [
            before,
            b'"',
            key.encode(),
            b'":{"observedContentType":',
            orjson.dumps(content_type or ""),
            b',"mode":"',
            mode.encode(),
            b'","data":"',
        ]
    )
    if len(heads) < _CACHED_MAX:
        heads[content_type] = out
    return out


def _side_into(dst: memoryview, pos: int, head: bytes, body: bytes, encoding: str) -> int:
    """One side (its ``head`` from :func:`_side_head`, its payload, the JSON after it) into
    ``dst`` from ``pos``; the offset after it, -1 when it does not fit."""
    if encoding != BASE64:
        end = _escape_between(dst, pos, head, body, _ENCODING_TAIL[encoding])
        if end != INVALID:  # else not UTF-8 text after all: the record says BASE64
            return -1 if end == NO_ROOM else end
    return _put_parts(dst, pos, head, binascii.b2a_base64(body, newline=False), _BASE64_TAIL)


def _floor(value: float) -> int:
    """``int(value // 1)`` without float floor division (an fmod per call)."""
    whole = int(value)
    return whole - 1 if whole > value else whole


def encode_record_into(
    item: CaptureItem,
    encoder: PayloadEncoder,
    event_id: str,
    dst: memoryview,
    pos: int,
    redactor: Redactor | None = None,
) -> int:
    """Write the record :func:`encode_record` gives into ``dst`` from ``pos``, byte for byte;
    returns the offset after it, or -1 when it does not fit (``dst`` after ``pos`` is then
    undefined).

    Why: building the record as dicts, serializing them and copying the bytes into the spool's
    staging buffer cost a 1 KB record about 2 us in the writer (CPython building five dicts,
    orjson walking them, the payloads' UTF-8 decode, malloc), and passed a large payload through
    memory five times. Here the fixed pieces are byte templates (cached per content type, method
    and path), each payload is escaped with the JSON around it by one call
    (:func:`~modeltap.core.jsonesc.escape_between`) or base64-encoded into its place, the rest
    goes in with one more (:func:`~modeltap.core.jsonesc.put`), and orjson only writes what
    varies and is not text: the headers, stream and genai sections. A payload with redaction
    rules goes through :func:`encode_record`.
    """
    if redactor is not None:
        for _key, mode, body, _ct in _sides(item):
            if body and redactor.rules(mode):
                return _put(dst, pos, encode_record(item, encoder, event_id, redactor))
    opened = False
    inp = item.input_body
    if inp is not None and item.input_recorded:
        ct = item.input_content_type
        head = _side_head(_INPUT_HEADS, _OPEN, "endpointInput", "INPUT", ct)
        pos = _side_into(dst, pos, head, inp, encoder.encoding_for(ct))
        if pos < 0:
            return -1
        opened = True
    out = item.output_body
    if out is not None and item.output_recorded:
        stream = item.stream
        if stream is not None and stream.truncated:
            whole = out.rfind(b"\n") + 1  # whole lines: each kept event stays readable
            out = out[:whole]
        ct = item.output_content_type
        if opened:
            head = _side_head(_OUTPUT_HEADS, b",", "endpointOutput", "OUTPUT", ct)
        else:
            head = _side_head(_OUTPUT_FIRST_HEADS, _OPEN, "endpointOutput", "OUTPUT", ct)
        pos = _side_into(dst, pos, head, out, encoder.encoding_for(ct))
        if pos < 0:
            return -1
        opened = True
    inference_id = item.inference_id
    second = _floor(item.inference_time)
    last = _last_time[0]
    if last[0] != second:
        last = (second, _format_second(second))
        _last_time[0] = last
    latency_ms = item.model_latency_s * 1000.0
    latency = _round3(latency_ms)
    if latency is None:  # NaN, infinite or huge
        latency = _dumps(round(latency_ms, 3))
    # The record's end goes in with the rest when no optional section follows (one call less).
    plain = (
        item.target_model is None
        and not item.request_headers
        and not item.response_headers
        and item.stream is None
        and not item.genai_fields
    )
    pos = _put_parts(
        dst,
        pos,
        b"" if opened else _OPEN,
        _AFTER_CAPTURE,
        event_id,
        _TIME,
        last[1],
        _META_END if inference_id is None else _INFERENCE_ID,
        b"" if inference_id is None else _dumps(inference_id),
        b"" if inference_id is None else _ID_META_END,
        str(item.status),
        _LATENCY,
        latency,
        _METHOD,
        _json_text(item.method),
        _PATH,
        _json_text(item.path),
        _CLOSE if plain else b"",
    )
    if pos < 0 or plain:
        return pos
    if item.target_model is not None:
        pos = _put_parts(dst, pos, _TARGET_MODEL, _json_text(item.target_model))
    if pos >= 0 and item.request_headers:
        pos = _put_parts(dst, pos, _REQUEST_HEADERS, _dumps(item.request_headers))
    if pos >= 0 and item.response_headers:
        pos = _put_parts(dst, pos, _RESPONSE_HEADERS, _dumps(item.response_headers))
    if pos >= 0 and item.stream is not None:
        pos = _put_parts(dst, pos, _STREAM, _dumps(item.stream.as_record()))
    if pos >= 0 and item.genai_fields:
        pos = _put_parts(dst, pos, _GENAI, _dumps(item.genai_fields))
    if pos < 0:
        return -1
    return _put_parts(dst, pos, _CLOSE)


def _put(dst: memoryview, pos: int, data: bytes) -> int:
    end = pos + len(data)
    if pos < 0 or end > len(dst):
        return -1
    dst[pos:end] = data
    return end


def decode_payload(payload: dict[str, object]) -> bytes:
    """Return the raw bytes of an endpointInput/endpointOutput payload."""
    data = payload.get("data")
    encoding = payload.get("encoding")
    if not isinstance(data, str):
        raise RecordError("payload has no string 'data'")
    if encoding in (CSV, JSON, TEXT):
        return data.encode("utf-8")
    if isinstance(encoding, str) and encoding.upper() == BASE64:
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise RecordError(f"payload is not valid base64: {exc}") from exc
    raise RecordError(f"unknown payload encoding {encoding!r}")
