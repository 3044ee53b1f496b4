"""OpenAI-compatible exchanges read on the spool writer's thread: the record's ``genai`` section
and the ``modeltap_sidecar_genai_*`` metrics.

The request path only marks an exchange on ``genai.paths`` and keeps references to its bodies
and the arrival time of each response chunk; everything here runs on the writer thread, never on
the event loop. Understood answers: one JSON document (chat ``choices[].message.content``,
completions ``choices[].text``), Server-Sent Events (``data: {...}`` chunks with
``choices[].delta.content`` or ``choices[].text``, ``data: [DONE]``, ``usage`` in the chunk
``stream_options.include_usage`` asks for) and Ollama's NDJSON (``message.content`` or
``response``, ``done_reason``, ``prompt_eval_count``/``eval_count``).

Record fields follow the OpenTelemetry gen_ai semantic conventions where they fit::

    "genai": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
              "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 64,
              "gen_ai.response.id": "chatcmpl-1", "gen_ai.response.model": "m",
              "gen_ai.response.finish_reasons": ["stop"],
              "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 40,
              "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop",
                                          "parts": [{"type": "text", "content": "..."}]}],
              "timeToFirstTokenMs": 41.0, "timePerOutputTokenMs": 10.2, "events": 42}

Time to first token is from the request sent to the model server to the arrival of the first
chunk carrying output text (a whole JSON answer: to its last byte); time per output token is the
time from the first to the last text chunk over the output tokens after the first (``usage``, or
the count of text events when the answer has no usage). Completions are assembled from the
events after the configured redaction, then the text patterns are applied to the whole text.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from modeltap.core.record import STREAM_END_COMPLETE, CaptureItem
from sidecar.redact import Redactor

log = logging.getLogger(__name__)

OTHER_MODEL = "other"
UNKNOWN_MODEL = "unknown"
FINISH_REASONS = (
    "stop",
    "length",
    "content_filter",
    "tool_calls",
    "function_call",
    "other",
    "none",
)
RESPONSE_ENDS = ("complete", "client_disconnected", "upstream_failed", "truncated", "unreadable")
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class GenAIMetrics:
    """The gen_ai metrics; updated on the writer thread only. ``model`` takes the first
    ``max_models`` names seen, then ``other``."""

    def __init__(self, registry: CollectorRegistry, max_models: int) -> None:
        self._max_models = max_models
        self._models: set[str] = set()
        self.ttft = Histogram(
            "modeltap_sidecar_genai_time_to_first_token_seconds",
            "Time from the request sent to the model server to the first output text "
            "(gen_ai.server.time_to_first_token), by model.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tpot = Histogram(
            "modeltap_sidecar_genai_time_per_output_token_seconds",
            "Time per output token after the first, of streamed answers "
            "(gen_ai.server.time_per_output_token), by model.",
            ["model"],
            buckets=TPOT_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "modeltap_sidecar_genai_request_duration_seconds",
            "Time from the request sent to the model server to the last byte of its answer "
            "(gen_ai.server.request.duration), by model.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "modeltap_sidecar_genai_usage_tokens",
            "Tokens the model server reported in usage (gen_ai.client.token.usage), by type "
            "(input, output) and model.",
            ["type", "model"],
            registry=registry,
        )
        self.finish_reasons = Counter(
            "modeltap_sidecar_genai_finish_reasons",
            "Choices by finish reason (gen_ai.response.finish_reasons; 'none' when the answer "
            "ended without one), by model.",
            ["reason", "model"],
            registry=registry,
        )
        self.responses = Counter(
            "modeltap_sidecar_genai_responses",
            "OpenAI-compatible answers read, by how they ended (complete, client_disconnected, "
            "upstream_failed, truncated, unreadable) and model.",
            ["end", "model"],
            registry=registry,
        )

        self.dropped = Counter(
            "modeltap_sidecar_genai_dropped_exchanges",
            "Exchanges on genai.paths left out of these metrics because the capture queue was "
            "full (serving comes first). Sampled ones also count as a dropped capture "
            "(capture_records, outcome dropped_queue_full); unsampled ones only here.",
            registry=registry,
        )

    def model_label(self, name: str | None) -> str:
        if not name:
            return UNKNOWN_MODEL
        if name in self._models:
            return name
        if len(self._models) < self._max_models:
            self._models.add(name)
            return name
        return OTHER_MODEL


@dataclass
class _Choice:
    parts: list[str] = field(default_factory=list)
    role: str | None = None
    finish_reason: str | None = None


@dataclass
class Reading:
    """What one exchange says, as read from its (redacted) documents."""

    operation: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    response_id: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    choices: dict[int, _Choice] = field(default_factory=dict)
    events: int = 0
    text_events: int = 0
    first_text_s: float | None = None
    last_text_s: float | None = None
    understood: bool = False

    def choice(self, index: Any) -> _Choice:
        i = index if isinstance(index, int) else 0
        found = self.choices.get(i)
        if found is None:
            found = self.choices[i] = _Choice()
        return found


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def read_request(body: bytes | None, path: str, reading: Reading) -> None:
    """The requested model and parameters (JSON request bodies only)."""
    if not body:
        return
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(doc, dict):
        return
    if isinstance(doc.get("messages"), list) or path.endswith("/chat"):
        reading.operation = "chat"
    elif "prompt" in doc or path.endswith(("completions", "/generate")):
        reading.operation = "text_completion"
    req = reading.request
    model = doc.get("model")
    if isinstance(model, str):
        req["gen_ai.request.model"] = model
    raw_options = doc.get("options")  # Ollama
    options: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
    for key, name in (
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
        ("frequency_penalty", "gen_ai.request.frequency_penalty"),
        ("presence_penalty", "gen_ai.request.presence_penalty"),
        ("seed", "gen_ai.request.seed"),
    ):
        value = _number(doc.get(key, options.get(key)))
        if value is not None:
            req[name] = value
    max_tokens = _int(
        doc.get("max_completion_tokens", doc.get("max_tokens", options.get("num_predict")))
    )
    if max_tokens is not None:
        req["gen_ai.request.max_tokens"] = max_tokens
    n = _int(doc.get("n"))
    if n is not None and n != 1:
        req["gen_ai.request.choice.count"] = n


def _read_doc(doc: Any, reading: Reading, at: float | None) -> None:
    """Fold one answer document (a whole answer, an SSE chunk or an NDJSON line) in."""
    if not isinstance(doc, dict):
        return
    reading.events += 1
    model = doc.get("model")
    if isinstance(model, str) and model:
        reading.response_model = model
    rid = doc.get("id")
    if isinstance(rid, str) and reading.response_id is None:
        reading.response_id = rid
    usage = doc.get("usage")
    if isinstance(usage, dict):
        reading.understood = True
        tokens_in, tokens_out = (
            _int(usage.get("prompt_tokens")),
            _int(usage.get("completion_tokens")),
        )
        if tokens_in is not None:
            reading.input_tokens = tokens_in
        if tokens_out is not None:
            reading.output_tokens = tokens_out
    got_text = False
    choices = doc.get("choices")
    if isinstance(choices, list):
        reading.understood = True
        for raw in choices:
            if not isinstance(raw, dict):
                continue
            choice = reading.choice(raw.get("index"))
            message = raw.get("delta")
            if not isinstance(message, dict):
                message = raw.get("message")
            text: Any = None
            if isinstance(message, dict):
                text = message.get("content")
                role = message.get("role")
                if isinstance(role, str):
                    choice.role = role
            if text is None:
                text = raw.get("text")
            if isinstance(text, str) and text:
                choice.parts.append(text)
                got_text = True
            reason = raw.get("finish_reason")
            if isinstance(reason, str):
                choice.finish_reason = reason
    elif "done" in doc:  # Ollama
        reading.understood = True
        choice = reading.choice(0)
        message = doc.get("message")
        text = message.get("content") if isinstance(message, dict) else doc.get("response")
        if isinstance(message, dict) and isinstance(message.get("role"), str):
            choice.role = message["role"]
        if isinstance(text, str) and text:
            choice.parts.append(text)
            got_text = True
        reason = doc.get("done_reason")
        if isinstance(reason, str):
            choice.finish_reason = reason
        tokens_in, tokens_out = _int(doc.get("prompt_eval_count")), _int(doc.get("eval_count"))
        if tokens_in is not None:
            reading.input_tokens = tokens_in
        if tokens_out is not None:
            reading.output_tokens = tokens_out
    if got_text:
        reading.text_events += 1
        if at is not None:
            if reading.first_text_s is None:
                reading.first_text_s = at
            reading.last_text_s = at


def _lines(body: bytes) -> Iterator[tuple[bytes, int]]:
    """Each line of ``body`` without its ending, with the offset of its last byte."""
    start = 0
    n = len(body)
    while start < n:
        nl = body.find(b"\n", start)
        end = n if nl < 0 else nl + 1
        yield body[start:end].rstrip(b"\r\n"), end - 1
        start = end


def stream_docs(body: bytes) -> Iterator[tuple[Any, int]]:
    """The JSON documents of an SSE or NDJSON body, each with the offset of its last byte.

    SSE events are ended by a blank line; their ``data:`` lines are joined with newlines (one
    line each in practice). Lines that are not JSON (``[DONE]``, comments) are skipped.
    """
    data: list[bytes] = []
    data_end = 0
    for line, end in _lines(body):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
            data_end = end
            continue
        if not line.strip():
            if data:
                yield from _parsed(b"\n".join(data), data_end)
                data = []
            continue
        if line[:1] in (b"{", b"["):  # an NDJSON line
            yield from _parsed(line, end)
    if data:
        yield from _parsed(b"\n".join(data), data_end)


def _parsed(text: bytes, end: int) -> Iterator[tuple[Any, int]]:
    if text.strip() == b"[DONE]":
        return
    try:
        yield orjson.loads(text), end
    except orjson.JSONDecodeError:
        return


def _finish_label(reason: str | None) -> str:
    if reason is None:
        return "none"
    return reason if reason in FINISH_REASONS else "other"


class GenAIReader:
    """Reads the OpenAI-compatible exchanges the request path marked (``CaptureItem.genai``)."""

    def __init__(self, metrics: GenAIMetrics, redactor: Redactor | None = None) -> None:
        self._metrics = metrics
        self._redactor = redactor
        self._warned = False

    def count_dropped(self) -> None:
        """An exchange the capture queue had no room for: counted, never read."""
        self._metrics.dropped.inc()

    def read_safely(self, item: CaptureItem) -> dict[str, object] | None:
        """:meth:`read`, where an answer that breaks the reader costs its genai fields only
        (counted as unreadable, logged once), never the writer thread or the record."""
        try:
            return self.read(item)
        except Exception as exc:  # a reader bug must not stop capture
            self._metrics.responses.labels("unreadable", UNKNOWN_MODEL).inc()
            if not self._warned:
                self._warned = True
                log.warning("could not read the gen_ai fields of %s: %r", item.path, exc)
            return None

    def read(self, item: CaptureItem) -> dict[str, object] | None:
        """Observe the exchange's metrics; return its record fields (None when not recorded)."""
        reading = Reading()
        read_request(item.input_body, item.path, reading)
        body = item.output_body or b""
        timing = item.stream
        redactor = self._redactor
        rules = redactor.output if redactor is not None else None
        ctype = (item.output_content_type or "").partition(";")[0].strip().lower()
        streamed = timing is not None and timing.chunk_times is not None
        if ctype in ("text/event-stream", "application/x-ndjson") or (
            streamed and ctype != "application/json"
        ):
            ends = timing.chunk_ends if timing is not None else None
            times = timing.chunk_times if timing is not None else None
            for doc, end in stream_docs(body):
                at = None
                if ends and times:
                    k = bisect.bisect_right(ends, end)
                    at = times[min(k, len(times) - 1)]
                if redactor is not None and rules:
                    doc = redactor.value(rules, doc)
                _read_doc(doc, reading, at)
        elif body:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                doc = None
            if doc is not None and redactor is not None and rules:
                doc = redactor.value(rules, doc)
            _read_doc(doc, reading, timing.last_byte_s if timing is not None else None)
        self._observe(item, reading)
        return self._fields(item, reading) if item.record else None

    def _observe(self, item: CaptureItem, reading: Reading) -> None:
        m = self._metrics
        model = m.model_label(reading.response_model or reading.request.get("gen_ai.request.model"))
        timing = item.stream
        if not reading.understood:
            end = "unreadable"
        elif timing is not None and timing.truncated:
            end = "truncated"
        else:
            end = timing.end if timing is not None else STREAM_END_COMPLETE
        m.responses.labels(end, model).inc()
        if not reading.understood:
            return
        if reading.input_tokens is not None:
            m.tokens.labels("input", model).inc(reading.input_tokens)
        if reading.output_tokens is not None:
            m.tokens.labels("output", model).inc(reading.output_tokens)
        for choice in reading.choices.values():
            m.finish_reasons.labels(_finish_label(choice.finish_reason), model).inc()
        if reading.first_text_s is not None:
            m.ttft.labels(model).observe(reading.first_text_s)
        tpot = _time_per_output_token(reading)
        if tpot is not None:
            m.tpot.labels(model).observe(tpot)
        if timing is not None and timing.end == STREAM_END_COMPLETE:
            m.duration.labels(model).observe(timing.last_byte_s)

    def _fields(self, item: CaptureItem, reading: Reading) -> dict[str, object] | None:
        if not reading.understood and not reading.request:
            return None
        out: dict[str, object] = {}
        if reading.operation is not None:
            out["gen_ai.operation.name"] = reading.operation
        out.update(reading.request)
        if reading.response_id is not None:
            out["gen_ai.response.id"] = reading.response_id
        if reading.response_model is not None:
            out["gen_ai.response.model"] = reading.response_model
        if reading.choices:
            out["gen_ai.response.finish_reasons"] = [
                c.finish_reason for _, c in sorted(reading.choices.items()) if c.finish_reason
            ]
        if reading.input_tokens is not None:
            out["gen_ai.usage.input_tokens"] = reading.input_tokens
        if reading.output_tokens is not None:
            out["gen_ai.usage.output_tokens"] = reading.output_tokens
        if reading.choices and item.output_recorded:
            redactor = self._redactor
            messages = []
            for _, choice in sorted(reading.choices.items()):
                text = "".join(choice.parts)
                if redactor is not None and redactor.output.patterns:
                    text = redactor.text(redactor.output, text)
                message: dict[str, object] = {
                    "role": choice.role or "assistant",
                    "parts": [{"type": "text", "content": text}],
                }
                if choice.finish_reason is not None:
                    message["finish_reason"] = choice.finish_reason
                messages.append(message)
            out["gen_ai.output.messages"] = messages
        if reading.first_text_s is not None:
            out["timeToFirstTokenMs"] = round(reading.first_text_s * 1000.0, 3)
        tpot = _time_per_output_token(reading)
        if tpot is not None:
            out["timePerOutputTokenMs"] = round(tpot * 1000.0, 3)
        if item.stream is not None and item.stream.chunk_times is not None:
            out["events"] = reading.events
        return out


def _time_per_output_token(reading: Reading) -> float | None:
    """Seconds per output token after the first, of a streamed answer (None otherwise)."""
    first, last = reading.first_text_s, reading.last_text_s
    tokens = reading.output_tokens if reading.output_tokens is not None else reading.text_events
    if first is None or last is None or reading.text_events < 2 or tokens < 2:
        return None
    return (last - first) / (tokens - 1)
