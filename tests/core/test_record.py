from __future__ import annotations

import base64

import orjson
import pytest

from modeltap.core.errors import RecordError
from modeltap.core.record import (
    CaptureItem,
    PayloadEncoder,
    decode_payload,
    encode_record,
    format_time,
)

ENC = PayloadEncoder(("text/csv",), ("application/json",))


def item(**kw: object) -> CaptureItem:
    base: dict[str, object] = dict(
        inference_time=1_700_000_000.987, method="POST", path="/invocations", status=200, model_latency_s=0.0123,
        inference_id=None, target_model=None, input_body=b"1,2", input_content_type="text/csv",
        output_body=b'{"p": 1}', output_content_type="application/json; charset=utf-8",
    )  # fmt: skip
    base.update(kw)
    return CaptureItem(**base)  # type: ignore[arg-type]


def test_record_layout_follows_sagemaker() -> None:
    line = encode_record(item(inference_id="abc", target_model="m1.tar.gz"), ENC, event_id="e-1")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    rec = orjson.loads(line)
    assert rec == {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2", "encoding": "CSV"},
            "endpointOutput": {
                "observedContentType": "application/json; charset=utf-8", "mode": "OUTPUT",
                "data": '{"p": 1}', "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": "e-1", "inferenceTime": "2023-11-14T22:13:20Z", "inferenceId": "abc"},
        "eventVersion": "0",
        "modeltap": {"status": 200, "modelLatencyMs": 12.3, "method": "POST", "path": "/invocations",
                     "targetModel": "m1.tar.gz"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ctype", "body", "encoding"),
    [
        ("text/csv", b"a,b", "CSV"),
        ("TEXT/CSV; charset=utf-8", b"a,b", "CSV"),
        ("application/json", b"{}", "JSON"),
        ("application/x-npy", b"\x93NUMPY", "BASE64"),
        (None, b"x", "BASE64"),
        ("text/csv", b"\xff\xfe", "BASE64"),  # not UTF-8: never mangled into text
    ],
)
def test_encoding_by_content_type(ctype: str | None, body: bytes, encoding: str) -> None:
    payload = ENC.payload(body, ctype, "INPUT")
    assert payload["encoding"] == encoding
    assert decode_payload(payload) == body  # type: ignore[arg-type]
    if encoding == "BASE64":
        assert base64.b64decode(payload["data"]) == body


def test_sides_are_optional_and_ids_unique() -> None:
    a = orjson.loads(encode_record(item(output_body=None), ENC))
    b = orjson.loads(encode_record(item(input_body=None), ENC))
    assert list(a["captureData"]) == ["endpointInput"]
    assert list(b["captureData"]) == ["endpointOutput"]
    assert a["eventMetadata"]["eventId"] != b["eventMetadata"]["eventId"]
    assert "inferenceId" not in a["eventMetadata"]


def test_decode_payload_rejects_garbage() -> None:
    with pytest.raises(RecordError, match="unknown payload encoding"):
        decode_payload({"data": "x", "encoding": "ROT13"})
    with pytest.raises(RecordError, match="not valid base64"):
        decode_payload({"data": "***", "encoding": "BASE64"})
    with pytest.raises(RecordError, match="no string 'data'"):
        decode_payload({"encoding": "CSV"})


def test_format_time_is_utc_seconds() -> None:
    assert format_time(0.999) == "1970-01-01T00:00:00Z"


def test_event_ids_are_version_4_uuids_and_distinct() -> None:
    import uuid

    from modeltap.core.record import new_event_id, new_event_ids

    ids = [new_event_id() for _ in range(1000)] + new_event_ids(1000)
    assert len(set(ids)) == len(ids)
    for text in ids[:200] + ids[-200:]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_inference_time_is_the_utc_second_as_sagemaker_writes_it() -> None:
    from modeltap.core.record import format_time

    assert format_time(1795448488.999) == "2026-11-23T15:41:28Z"
    assert format_time(1795448489.0) == "2026-11-23T15:41:29Z"
    assert format_time(0.5) == "1970-01-01T00:00:00Z"


def test_encodings_stay_right_past_the_remembered_content_types() -> None:
    # The encoder remembers the content types it has seen (a service sends a few), up to a bound:
    # clients choose the header, so thousands of distinct values must neither grow it nor confuse it.
    enc = PayloadEncoder(("text/csv",), ("application/json",))
    for i in range(600):
        assert enc.encoding_for(f"text/csv; charset=utf-8; n={i}") == "CSV"
        assert enc.encoding_for(f"application/x-{i}") == "BASE64"
        assert enc.encoding_for(f"Application/JSON; v={i}") == "JSON"
    assert enc.encoding_for("text/csv") == "CSV" and enc.encoding_for(None) == "BASE64"
    assert len(enc._seen) <= 256
