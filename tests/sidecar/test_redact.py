"""Redaction of payloads and the header allow-list: rules, replacements, refusals, records."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import orjson
import pytest

from modeltap.core.errors import ConfigError, RedactionError
from modeltap.core.record import CaptureItem, PayloadEncoder, encode_record
from sidecar.__main__ import load_config
from sidecar.config import RedactConfig
from sidecar.redact import Redactor, build_redactor, compile_path

KEY = b"0123456789abcdef-test-key"
ENCODER = PayloadEncoder(("text/csv",), ("application/json", "application/jsonlines"))


def digest(text: str, key: bytes = KEY, n: int = 16) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:n]


def redactor(**fields: object) -> Redactor:
    r = build_redactor(RedactConfig(**fields))  # type: ignore[arg-type]
    assert r is not None
    return r


def item(
    body_in: bytes | None,
    ct_in: str | None,
    body_out: bytes | None = None,
    ct_out: str | None = None,
) -> CaptureItem:
    return CaptureItem(
        inference_time=0.0,
        method="POST",
        path="/invocations",
        status=200,
        model_latency_s=0.001,
        inference_id="id-1",
        target_model=None,
        input_body=body_in,
        input_content_type=ct_in,
        output_body=body_out,
        output_content_type=ct_out,
    )


def data(record: bytes, side: str = "endpointInput") -> str:
    return str(orjson.loads(record)["captureData"][side]["data"])


def test_path_grammar() -> None:
    assert compile_path("a.b[0][*]") == ("a", "b", 0, None)
    assert compile_path("$.x['k.with.dots'][-1]") == ("x", "k.with.dots", -1)
    for bad in ("", "$", "a..b", "a[", "a[x]", "[0]b"):
        with pytest.raises(ValueError):
            compile_path(bad)


def test_json_paths_with_marker() -> None:
    r = redactor(
        input_json_paths=("instances[*].ssn", "customer.name", "missing.path", "tags[-1]"),
        output_json_paths=("predictions[*].id",),
    )
    body = {
        "instances": [{"ssn": "123-45-6789", "age": 41}, {"ssn": 5, "age": 7}, "scalar"],
        "customer": {"name": {"first": "Ada"}, "tier": "gold"},
        "tags": ["a", "b"],
    }
    out = {"predictions": [{"id": "u1", "score": 0.5}]}
    rec = encode_record(
        item(orjson.dumps(body), "application/json", orjson.dumps(out), "application/json"),
        ENCODER,
        redactor=r,
    )
    assert orjson.loads(data(rec)) == {
        "instances": [{"ssn": "[REDACTED]", "age": 41}, {"ssn": "[REDACTED]", "age": 7}, "scalar"],
        "customer": {"name": "[REDACTED]", "tier": "gold"},
        "tags": ["a", "[REDACTED]"],
    }
    assert orjson.loads(data(rec, "endpointOutput")) == {
        "predictions": [{"id": "[REDACTED]", "score": 0.5}]
    }
    parsed = orjson.loads(rec)["captureData"]["endpointInput"]
    assert parsed["encoding"] == "JSON" and parsed["observedContentType"] == "application/json"


def test_json_lines_and_hash() -> None:
    r = redactor(input_json_paths=("email",), replacement="hash", hash_key=KEY.decode())
    body = b'{"email": "a@x.org", "n": 1}\n{"email": "a@x.org", "n": 2}\n{"n": 3}\n'
    rec = encode_record(item(body, "application/jsonlines"), ENCODER, redactor=r)
    h = digest("a@x.org")
    assert data(rec) == f'{{"email":"{h}","n":1}}\n{{"email":"{h}","n":2}}\n{{"n":3}}\n'
    # Non-string values hash their compact JSON.
    r = redactor(input_json_paths=("v",), replacement="hash", hash_key=KEY.decode())
    rec = encode_record(item(b'{"v": {"a": [1, true]}}', "application/json"), ENCODER, redactor=r)
    assert orjson.loads(data(rec)) == {"v": digest('{"a":[1,true]}')}


def test_csv_columns_marker_and_hash() -> None:
    body = b'5.1,"Smith, Ann",x\r\n6.7,Bob,y\r\n7\r\n'
    r = redactor(input_csv_columns=(1,))
    rec = encode_record(item(body, "text/csv"), ENCODER, redactor=r)
    assert data(rec) == "5.1,[REDACTED],x\r\n6.7,[REDACTED],y\r\n7\r\n"
    r = redactor(
        input_csv_columns=(0, 1), replacement="hash", hash_key=KEY.decode(), hash_hex_chars=12
    )
    rec = encode_record(item(b"a,b\nc,d", "text/csv"), ENCODER, redactor=r)
    assert (
        data(rec)
        == f"{digest('a', n=12)},{digest('b', n=12)}\n{digest('c', n=12)},{digest('d', n=12)}"
    )


def test_only_configured_sides_are_touched() -> None:
    r = redactor(output_csv_columns=(0,))
    rec = encode_record(item(b"secret,1", "text/csv", b"0.9", "text/csv"), ENCODER, redactor=r)
    assert data(rec) == "secret,1"
    assert data(rec, "endpointOutput") == "[REDACTED]"


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b'{"ssn": "1"', "application/json"),  # not JSON
        (b"\xff\xfe", "application/json"),  # not UTF-8
        (b"ssn,1", "text/csv"),  # an encoding this side has no rule for
        (b"\x00\x01binary", "application/octet-stream"),  # base64
        (b'"unterminated,1', "text/csv"),  # for the CSV rule below
    ],
)
def test_unreadable_payloads_are_never_written(body: bytes, ctype: str) -> None:
    r = redactor(input_json_paths=("ssn",), input_csv_columns=(0,) if body.startswith(b'"') else ())
    with pytest.raises(RedactionError):
        encode_record(item(body, ctype), ENCODER, redactor=r)


def test_empty_payloads_and_no_rules() -> None:
    r = redactor(input_json_paths=("a",))
    rec = encode_record(item(b"", None), ENCODER, redactor=r)
    assert data(rec) == ""
    assert build_redactor(RedactConfig()) is None


def test_hash_key_file_and_stability(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    cfg = RedactConfig(input_csv_columns=(0,), replacement="hash", hash_key_file=key_file)
    one = build_redactor(cfg)
    two = build_redactor(cfg)  # a restart: a new redactor from the same key
    assert one is not None and two is not None
    rules = one.rules("INPUT")
    assert one.apply(rules, "v", "CSV") == two.apply(rules, "v", "CSV") == digest("v")
    other = redactor(input_csv_columns=(0,), replacement="hash", hash_key="another key, 16+ bytes")
    assert other.apply(rules, "v", "CSV") != digest("v")
    with pytest.raises(ConfigError, match="cannot read"):
        build_redactor(
            RedactConfig(
                input_csv_columns=(0,), replacement="hash", hash_key_file=tmp_path / "nope"
            )
        )
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        build_redactor(
            RedactConfig(input_csv_columns=(0,), replacement="hash", hash_key_file=short)
        )


def test_key_is_not_in_the_config_repr() -> None:
    cfg = load_config(
        ["--redact.input-csv-columns", "0", "--redact.replacement", "hash"],
        {"MODELTAP_SIDECAR_REDACT_HASH_KEY": "super-secret-key-123"},
    )
    assert cfg.redact.hash_key == "super-secret-key-123"
    assert "super-secret" not in repr(cfg)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--capture.headers", "X-Tenant,Authorization"], "'Authorization' carries credentials"),
        (["--capture.headers", "cookie"], "'cookie' carries credentials"),
        (["--capture.headers", "Set-Cookie"], "never captured"),
        (["--capture.headers", "Proxy-Authorization"], "never captured"),
        (["--capture.headers", "bad header"], "is not a header name"),
        (["--redact.input-json-paths", "a[x]"], "redact.input_json_paths: cannot read path"),
        (["--redact.output-csv-columns", "-1"], "columns count from 0"),
        (["--redact.replacement", "hash", "--redact.input-csv-columns", "0"], "needs exactly one"),
        (["--redact.hash-key", "k" * 20], "replacement is not 'hash'"),
        (
            ["--redact.replacement", "hash", "--redact.hash-key", "short"],
            "shorter than 16 bytes",
        ),
    ],
)
def test_privacy_config_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(argv, {})


def test_allowed_headers_go_under_modeltap() -> None:
    rec = item(b"1", "text/csv")
    rec.request_headers = {"x-tenant": "t1"}
    rec.response_headers = {"x-model-version": "3, 4"}
    out = orjson.loads(encode_record(rec, ENCODER))
    assert out["modeltap"]["requestHeaders"] == {"x-tenant": "t1"}
    assert out["modeltap"]["responseHeaders"] == {"x-model-version": "3, 4"}
    plain = orjson.loads(encode_record(item(b"1", "text/csv"), ENCODER))
    assert "requestHeaders" not in plain["modeltap"] and "responseHeaders" not in plain["modeltap"]


# -- text patterns ------------------------------------------------------------------------------
PII = "mail jane.doe+x@mail.example.org, call +1 415 555 0100 or (020) 7946 0958, card 4111-1111-1111-1111"


def test_builtin_patterns_replace_pii_in_free_text() -> None:
    r = redactor(patterns=("email", "phone", "card"))
    assert r.text(r.input, PII) == (
        "mail [REDACTED], call [REDACTED] or [REDACTED], card [REDACTED]"
    )
    # Digit runs that are not cards (Luhn fails), dates and plain numbers stay.
    kept = "order 4111 1111 1111 1112 on 2026-12-07, 42 items, id 1234567"
    assert r.text(r.input, kept) == kept


def test_user_regexes_and_hash_replacement() -> None:
    r = redactor(regexes=(r"EMP-\d{4}",), replacement="hash", hash_key=KEY.decode())
    assert r.text(r.output, "badge EMP-1234 ok") == f"badge {digest('EMP-1234')} ok"


def test_patterns_touch_json_strings_only_and_csv_cells() -> None:
    r = redactor(patterns=("email", "phone"))
    body = orjson.dumps({"prompt": "reach me at a@b.io", "max_tokens": 4155550100})
    record = encode_record(item(body, "application/json"), ENCODER, redactor=r)
    assert orjson.loads(data(record)) == {
        "prompt": "reach me at [REDACTED]",
        "max_tokens": 4155550100,
    }
    record = encode_record(item(b"1,a@b.io\n", "text/csv"), ENCODER, redactor=r)
    assert data(record) == "1,[REDACTED]\n"


def test_event_streams_take_paths_and_patterns_per_event() -> None:
    stream = (
        b'data: {"choices":[{"delta":{"content":"x@y.com"}}]}\n\n'
        b": keep-alive comment\n\n"
        b"data: [DONE]\n\n"
    )
    encoder = PayloadEncoder((), ("application/json",), ("text/event-stream",))
    it = item(None, None, stream, "text/event-stream")
    r = redactor(patterns=("email",))
    out = orjson.loads(encode_record(it, encoder, redactor=r))["captureData"]["endpointOutput"]
    assert out["encoding"] == "TEXT"
    assert out["data"] == (
        'data: {"choices":[{"delta":{"content":"[REDACTED]"}}]}\n\n'
        ": keep-alive comment\n\n"
        "data: [DONE]\n\n"
    )
    r = redactor(output_json_paths=("choices[*].delta.content",))
    out = orjson.loads(encode_record(it, encoder, redactor=r))["captureData"]["endpointOutput"]
    assert '"content":"[REDACTED]"' in out["data"]
    # A data line that is not JSON, with only path rules: never written in clear.
    bad = item(None, None, b"data: jane@x.org\n\n", "text/event-stream")
    with pytest.raises(RedactionError):
        encode_record(bad, encoder, redactor=r)


def test_a_bad_regex_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match=r"redact\.regexes"):
        load_config(["--redact.regexes", "a(b"], environ={})
    with pytest.raises(ConfigError, match=r"redact\.patterns"):
        load_config(["--redact.patterns", "ssn"], environ={})
