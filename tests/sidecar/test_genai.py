"""The gen_ai reader on its own: events to completion, timing per chunk, usage, labels."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry

from modeltap.core.record import CaptureItem, StreamTiming
from sidecar.genai import GenAIMetrics, GenAIReader, stream_docs


def sse(*events: dict[str, object]) -> list[bytes]:
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]


def delta(text: str, reason: str | None = None, model: str = "m") -> dict[str, object]:
    return {"model": model, "choices": [{"index": 0, "delta": {"content": text},
                                         "finish_reason": reason}]}  # fmt: skip


def streamed(chunks: list[bytes], times: list[float], record: bool = True) -> CaptureItem:
    ends, size = [], 0
    for c in chunks:
        size += len(c)
        ends.append(size)
    body = b"".join(chunks)
    timing = StreamTiming(times[0], times[-1], len(chunks), size, "complete", False, ends, times)
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}
    return CaptureItem(
        0.0, "POST", "/v1/chat/completions", 200, 0.001, None, None,
        orjson.dumps(request), "application/json", body, "text/event-stream",
        stream=timing, genai=True, record=record,
    )  # fmt: skip


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_events_assemble_and_time_by_the_chunk_they_arrived_in() -> None:
    registry = CollectorRegistry()
    reader = GenAIReader(GenAIMetrics(registry, 5))
    role = {"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    usage = {"model": "m", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}}
    events = sse(role, delta("a"), delta("b"), delta("c", "length"), usage)
    # The role chunk at 0.1 s; "a" at 0.3 s; "b" and "c" arrive together at 0.5 s.
    chunks = [events[0], events[1], events[2] + events[3], events[4] + b"data: [DONE]\n\n"]
    fields = reader.read(streamed(chunks, [0.1, 0.3, 0.5, 0.6]))
    assert fields is not None
    assert fields["gen_ai.output.messages"] == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "abc"}],
            "finish_reason": "length",
        }
    ]
    assert fields["gen_ai.response.finish_reasons"] == ["length"]
    assert fields["gen_ai.request.max_tokens"] == 9
    assert fields["timeToFirstTokenMs"] == 300.0  # the first text, not the role chunk
    assert fields["timePerOutputTokenMs"] == 100.0  # (0.5 - 0.3) / (3 - 1)
    assert fields["events"] == 5
    assert (
        sample(registry, "modeltap_sidecar_genai_usage_tokens_total", type="output", model="m") == 3
    )
    assert (
        sample(registry, "modeltap_sidecar_genai_finish_reasons_total", reason="length", model="m")
        == 1
    )
    assert sample(registry, "modeltap_sidecar_genai_request_duration_seconds_sum", model="m") == 0.6


def test_model_labels_are_capped_and_unsampled_items_are_counted_not_recorded() -> None:
    registry = CollectorRegistry()
    reader = GenAIReader(GenAIMetrics(registry, 2))
    for model in ("a", "b", "c", "d", "a"):
        item = streamed(sse(delta("x", "stop", model)), [0.1], record=False)
        assert reader.read(item) is None
    responses = "modeltap_sidecar_genai_responses_total"
    assert sample(registry, responses, end="complete", model="a") == 2
    assert sample(registry, responses, end="complete", model="b") == 1
    assert sample(registry, responses, end="complete", model="other") == 2


def test_unreadable_answers_are_counted_and_never_break_the_writer() -> None:
    registry = CollectorRegistry()
    reader = GenAIReader(GenAIMetrics(registry, 2))
    item = streamed([b"data: not json\n\n", b"\xff\xfe"], [0.1, 0.2])
    item.input_body = b"[1, 2"
    assert reader.read_safely(item) is None
    assert sample(registry, "modeltap_sidecar_genai_responses_total", end="unreadable",
                  model="unknown") == 1  # fmt: skip


def test_ndjson_and_multiline_sse_documents() -> None:
    body = b'{"model":"o","message":{"content":"hi"},"done":false}\n{"done":true}\n'
    assert [d for d, _ in stream_docs(body)] == [
        {"model": "o", "message": {"content": "hi"}, "done": False}, {"done": True},
    ]  # fmt: skip
    multi = b'event: x\ndata: {"a":\ndata: 1}\n\ndata: [DONE]\n\n'
    assert [d for d, _ in stream_docs(multi)] == [{"a": 1}]
