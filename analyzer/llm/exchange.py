"""One OpenAI-compatible exchange as the LLM section reads it, from a capture record or from a
line of a JSON Lines file of past exchanges.

A capture record's request is its ``endpointInput`` (a chat ``messages`` or completions
``prompt`` document); its answer is the sidecar's ``modeltap.genai`` section when there is one
(assembled completion, usage, finish reasons, time to first token), else ``endpointOutput`` read
here: one JSON answer, Server-Sent Events (``data: {...}``) or Ollama's NDJSON. A past-exchange
line is ``{"request": {...}, "response": {...}}``, the response one answer document or a list of
stream chunks, with optional ``timeToFirstTokenMs`` / ``timePerOutputTokenMs``. Only the first
choice is read. A line that is neither is counted by reason, never raised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from modeltap.core.errors import RecordError
from modeltap.core.record import decode_payload

JSON_FORMATS = ("json_object", "json_schema")


@dataclass
class Exchange:
    """What the descriptors read of one exchange (None: not in the exchange)."""

    prompt: str
    message_count: int
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_asked: bool = False  # response_format asked for JSON
    completion: str | None = None  # the first choice's text
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_ms: float | None = None
    tpot_ms: float | None = None


class Unreadable(Exception):
    """A line or record that is no OpenAI-compatible exchange; ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text")
        )
    return ""


def request_exchange(doc: Any) -> Exchange:
    """The request side: prompt, message count, model and parameters."""
    if not isinstance(doc, dict):
        raise Unreadable("request_not_an_object")
    messages = doc.get("messages")
    if isinstance(messages, list):
        prompt = "\n".join(_text(m.get("content")) for m in messages if isinstance(m, dict))
        count = len(messages)
    elif "prompt" in doc:
        raw = doc["prompt"]
        prompt = "\n".join(str(p) for p in raw) if isinstance(raw, list) else str(raw or "")
        count = 1
    else:
        raise Unreadable("no_messages_or_prompt")
    raw_options = doc.get("options")  # Ollama
    options: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
    fmt = doc.get("response_format")
    asked = (isinstance(fmt, dict) and fmt.get("type") in JSON_FORMATS) or doc.get(
        "format"
    ) == "json"
    model = doc.get("model")
    return Exchange(
        prompt=prompt,
        message_count=count,
        model=model if isinstance(model, str) and model else None,
        temperature=_float(doc.get("temperature", options.get("temperature"))),
        max_tokens=_int(
            doc.get("max_completion_tokens", doc.get("max_tokens", options.get("num_predict")))
        ),
        json_asked=bool(asked),
    )


class _Answer:
    """The first choice folded from an answer document or its stream's chunks."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish: str | None = None
        self.model: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.understood = False

    def _tokens(self, tokens_in: Any, tokens_out: Any) -> None:
        if _int(tokens_in) is not None:
            self.tokens_in = tokens_in
        if _int(tokens_out) is not None:
            self.tokens_out = tokens_out

    def fold(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            return
        if isinstance(doc.get("model"), str) and doc["model"]:
            self.model = doc["model"]
        usage = doc.get("usage")
        if isinstance(usage, dict):
            self.understood = True
            self._tokens(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        choices = doc.get("choices")
        if isinstance(choices, list):
            self.understood = True
            for c in choices:
                if not isinstance(c, dict) or c.get("index", 0) != 0:
                    continue
                msg = c.get("delta") if isinstance(c.get("delta"), dict) else c.get("message")
                text = msg.get("content") if isinstance(msg, dict) else None
                if text is None:
                    text = c.get("text")
                if isinstance(text, str):
                    self.parts.append(text)
                if isinstance(c.get("finish_reason"), str):
                    self.finish = c["finish_reason"]
        elif "done" in doc:  # Ollama
            self.understood = True
            msg = doc.get("message")
            text = msg.get("content") if isinstance(msg, dict) else doc.get("response")
            if isinstance(text, str):
                self.parts.append(text)
            if isinstance(doc.get("done_reason"), str):
                self.finish = doc["done_reason"]
            self._tokens(doc.get("prompt_eval_count"), doc.get("eval_count"))

    def into(self, ex: Exchange) -> None:
        if not self.understood:
            raise Unreadable("answer_not_understood")
        ex.completion = "".join(self.parts)
        ex.finish_reason = self.finish
        ex.input_tokens, ex.output_tokens = self.tokens_in, self.tokens_out
        ex.model = self.model or ex.model


def stream_documents(text: bytes) -> Iterator[Any]:
    """The JSON documents of an SSE body (``data:`` lines) or an NDJSON one."""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        if not line.startswith((b"{", b"[")):
            continue  # [DONE], comments, event names, blank lines
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            continue


def _payload(record: Mapping[str, Any], side: str) -> bytes | None:
    capture = record.get("captureData")
    payload = capture.get(side) if isinstance(capture, dict) else None
    if not isinstance(payload, dict):
        return None
    try:
        return decode_payload(payload)
    except (RecordError, ValueError):
        raise Unreadable("bad_encoding") from None


def from_genai(ex: Exchange, genai: Mapping[str, Any]) -> bool:
    """Fill the answer from the sidecar's ``genai`` section; False when it holds no output."""
    messages = genai.get("gen_ai.output.messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        return False
    first = messages[0]
    parts = first.get("parts")
    ex.completion = "".join(str(p.get("content", "")) for p in parts or [] if isinstance(p, dict))
    reason = first.get("finish_reason")
    ex.finish_reason = reason if isinstance(reason, str) else None
    ex.input_tokens = _int(genai.get("gen_ai.usage.input_tokens"))
    ex.output_tokens = _int(genai.get("gen_ai.usage.output_tokens"))
    model = genai.get("gen_ai.response.model")
    ex.model = model if isinstance(model, str) and model else ex.model
    ex.ttft_ms = _float(genai.get("timeToFirstTokenMs"))
    ex.tpot_ms = _float(genai.get("timePerOutputTokenMs"))
    return True


def _answer_bytes(ex: Exchange, body: bytes) -> None:
    answer = _Answer()
    try:
        answer.fold(orjson.loads(body))
    except orjson.JSONDecodeError:
        for doc in stream_documents(body):
            answer.fold(doc)
    answer.into(ex)


def from_record(record: Mapping[str, Any]) -> Exchange:
    """The exchange of a capture record; raises :class:`Unreadable`."""
    body = _payload(record, "endpointInput")
    if body is None:
        raise Unreadable("no_input")
    try:
        ex = request_exchange(orjson.loads(body))
    except orjson.JSONDecodeError:
        raise Unreadable("request_not_json") from None
    meta = record.get("modeltap")
    genai = meta.get("genai") if isinstance(meta, dict) else None
    if isinstance(genai, dict) and from_genai(ex, genai):
        return ex
    out = _payload(record, "endpointOutput")
    if out is None:
        raise Unreadable("no_output")
    _answer_bytes(ex, out)
    return ex


def from_line(doc: Any) -> Exchange:
    """The exchange of one JSON Lines document: a capture record or a request/response pair."""
    if isinstance(doc, dict) and isinstance(doc.get("captureData"), dict):
        return from_record(doc)
    if not isinstance(doc, dict) or "request" not in doc or "response" not in doc:
        raise Unreadable("not_an_exchange")
    ex = request_exchange(doc["request"])
    answer = _Answer()
    chunks = doc["response"]
    for part in chunks if isinstance(chunks, list) else [chunks]:
        answer.fold(part)
    answer.into(ex)
    ex.ttft_ms = _float(doc.get("timeToFirstTokenMs"))
    ex.tpot_ms = _float(doc.get("timePerOutputTokenMs"))
    return ex
