"""Records written straight into a buffer are byte for byte the records orjson builds.

The spool writes every record with ``encode_record_into`` (payloads escaped by
``modeltap.core.jsonesc``, in C where built); the reference is ``orjson.dumps`` of the decoded
payload and ``encode_record`` (one orjson call over the whole record, the format as it was).
"""

from __future__ import annotations

import base64
import os

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeltap.core import jsonesc
from modeltap.core.record import (
    CaptureItem,
    PayloadEncoder,
    StreamTiming,
    encode_record,
    encode_record_into,
)

IMPLEMENTATIONS = [jsonesc.python_escape_into]
if jsonesc.compiled:
    from collections.abc import Callable

    from modeltap.core import _jsonesc

    def _at_most(path: str) -> Callable[[bytes, memoryview, int], int]:
        """The C escaper held to one of its paths (AVX2, SSSE3, SSE2, scalar): each is tested
        on a CPU that has the better ones too."""

        def escape_into(body: bytes, dst: memoryview, pos: int) -> int:
            _jsonesc.use_paths(path)
            try:
                return _jsonesc.escape_into(body, dst, pos)
            finally:
                _jsonesc.use_paths("auto")

        escape_into.__name__ = f"escape_into_{path}"
        return escape_into

    IMPLEMENTATIONS += [_at_most(path) for path in _jsonesc.use_paths("auto")]
ENC = PayloadEncoder(("text/csv",), ("application/json",), ("text/event-stream",))

# Bytes that need care, and the ways UTF-8 goes wrong (overlong, surrogate, above U+10FFFF, cut).
SPECIAL = [bytes([b]) for b in range(0x20)] + [b'"', b"\\", b"/", b"\x7f", b"\xc3\xa9"]
SPECIAL += [b"\xe2\x80\xa8", b"\xf0\x9f\x98\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
SPECIAL += [
    b"\xe2\x82",
    b"\x80",
    b"\xff",
    b"\xf5\x80\x80\x80",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\x80",
]
SPECIAL += [b"\xee\x80\x80", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf", b"\xdf\xbf", b"\xc2\x80"]
PIECE = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.sampled_from([b"5.1,3.5,1.4\n" * 50, b"a" * 37, b'{"x": [1, 2]}' * 9]),
)
BODY = st.lists(PIECE, max_size=30).map(b"".join)
TEXT = st.text(max_size=60).map(str.encode)
# Valid text around one piece that needs care: a refused byte stands alone in it.
ONE_SPECIAL = st.tuples(TEXT, st.sampled_from(SPECIAL), TEXT).map(b"".join)


def reference(body: bytes) -> bytes | None:
    """orjson's escaping of the decoded body (None: not UTF-8 text)."""
    try:
        return orjson.dumps(body.decode("utf-8"))[1:-1]
    except UnicodeDecodeError:
        return None


@pytest.mark.parametrize("escape_into", IMPLEMENTATIONS)
@settings(max_examples=400)
@given(body=st.one_of(BODY, ONE_SPECIAL), pos=st.integers(0, 40))
def test_escaping_is_orjsons(escape_into, body: bytes, pos: int) -> None:  # type: ignore[no-untyped-def]
    want = reference(body)
    buf = bytearray(b"#" * (pos + 6 * len(body) + 30))
    end = escape_into(body, memoryview(buf), pos)
    if want is None:
        assert end == jsonesc.INVALID
        return
    assert bytes(buf[pos:end]) == want
    assert buf[:pos] == b"#" * pos  # nothing written before pos
    # Exactly the room it needs is enough, a byte less is refused, and nothing is written past
    # the end of the buffer it is given (the bytes after the view stay as they were).
    room = pos + len(want)
    exact = bytearray(b"#" * (room + 64))
    assert escape_into(body, memoryview(exact)[:room], pos) == room
    assert bytes(exact[pos:room]) == want and exact[room:] == b"#" * 64
    if want:
        short = bytearray(b"#" * (room + 64))
        assert escape_into(body, memoryview(short)[: room - 1], pos) == jsonesc.NO_ROOM
        assert short[room - 1 :] == b"#" * 65


@pytest.mark.parametrize("escape_into", IMPLEMENTATIONS)
def test_escaping_of_large_bodies_and_every_byte(escape_into) -> None:  # type: ignore[no-untyped-def]
    every = bytes(range(0x80)) * 3
    rnd = os.urandom(1 << 20)
    text = "".join(chr(c) for c in range(0x20, 0x3000)).encode() * 8
    for body in (every, b"", b"x" * (1 << 20) + b'"', b"5.1,3.5\n" * 40_000, text, rnd):
        want = reference(body)
        buf = memoryview(bytearray(6 * len(body) + 8))
        end = escape_into(body, buf, 3)
        assert (bytes(buf[3:end]) if end >= 0 else None) == want


# The compiled escaper works in 16- and 32-byte blocks and checks UTF-8 by lookup tables from the
# first block holding a byte >= 0x80 on: every offset of a piece against those edges.
EDGE_PIECES = [b"\n", b'"', b"\\", b"\t", b"\x08", b"\x0c", b"\r", b"\x00", b"\x0b", b"\x1f"]
EDGE_PIECES += [
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",
]
EDGE_PIECES += [
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xc3",
    b"\x80",
    b"\xbf\xbf",
    b"\xc0\xaf",
    b"\xc1\xbf",
]
EDGE_PIECES += [
    b"\xe0\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
]
EDGE_PIECES += [
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xff",
    b"\xc3\xa9\xa9",
    b"\xe2\x82\xac\x80",
]


@pytest.mark.parametrize("escape_into", IMPLEMENTATIONS)
@pytest.mark.parametrize("lead", [b"a", b"5,\n", b"\xc3\xa9"], ids=["ascii", "csv", "utf8"])
def test_escaping_at_block_edges(escape_into, lead: bytes) -> None:  # type: ignore[no-untyped-def]
    buf = memoryview(bytearray(2048))
    for k in range(101):
        prefix = (lead * k)[:k]
        if lead == b"\xc3\xa9" and k % 2:
            prefix = b"a" + prefix[:-1]  # an odd length: 'a' then whole characters
        for piece in EDGE_PIECES:
            for tail in (b"", b"b", b"x" * 31 + b"\n", "\u00e9z".encode() * 20):
                body = prefix + piece + tail
                want = reference(body)
                end = escape_into(body, buf, 5)
                assert (bytes(buf[5:end]) if end >= 0 else None) == want, body


@pytest.mark.parametrize("escape_into", IMPLEMENTATIONS)
def test_escaping_of_one_escape_per_block(escape_into) -> None:  # type: ignore[no-untyped-def]
    # CSV lines of 32 bytes and more: blocks holding one two-byte escape, at each of its offsets,
    # lines shifted against the blocks, bodies ending at every distance from the last one.
    buf = memoryview(bytearray(8192))
    for at in range(33):
        for escape in (b"\n", b'"', b"\\", b"\t"):
            line = b"a" * at + escape + b"5,1" * 11
            for lead in range(0, 40, 3):
                for end in range(200, 264):
                    body = (b"x" * lead + line * 8)[:end]
                    got = escape_into(body, buf, 1)
                    assert bytes(buf[1:got]) == reference(body), (at, escape, lead, end)


@pytest.mark.parametrize("escape_into", IMPLEMENTATIONS)
@settings(max_examples=300)
@given(
    ascii_len=st.integers(0, 9000),
    text=st.text(max_size=300),
    bad=st.sampled_from([b"", *EDGE_PIECES]),
    after=st.integers(0, 5000),
    pos=st.integers(0, 3),
)
def test_escaping_of_utf8_far_into_a_body(  # type: ignore[no-untyped-def]
    escape_into, ascii_len: int, text: str, bad: bytes, after: int, pos: int
) -> None:
    """UTF-8 met late, and a flaw far past the first byte >= 0x80 (checked 4 KiB at a time)."""
    body = b"5.1,3.5\n" * (ascii_len // 8) + text.encode("utf-8", "surrogatepass")
    body += "\u00e9".encode() * (after // 2) + bad + "\u20ac,".encode() * (after % 7)
    want = reference(body)
    room = pos + 6 * len(body) + 8
    buf = bytearray(room)
    end = escape_into(body, memoryview(buf), pos)
    assert (bytes(buf[pos:end]) if end >= 0 else None) == want
    if want:
        exact = bytearray(b"#" * (pos + len(want) + 40))
        assert escape_into(body, memoryview(exact)[: pos + len(want)], pos) == pos + len(want)
        assert bytes(exact[pos : pos + len(want)]) == want and exact[pos + len(want) :] == b"#" * 40
        assert escape_into(body, memoryview(exact)[: pos + len(want) - 1], pos) == jsonesc.NO_ROOM


@pytest.mark.parametrize("escape_into", IMPLEMENTATIONS)
def test_no_byte_is_written_past_the_buffer(escape_into) -> None:  # type: ignore[no-untyped-def]
    # Escapes at every offset of the last 16- and 32-byte blocks, with a byte too little room,
    # before and after a byte >= 0x80 (UTF-8 checked as it comes, or checked ahead).
    for k in range(100):
        for special in (b"\x01", b"\n", b"\xf0\x9f\x98\x80", b"\xc3\xa9\n"):
            body = (b"\xc3\xa9" if k % 2 else b"a") + b"a" * k + special
            room = len(reference(body) or b"")
            buf = bytearray(b"#" * (room + 32))
            assert escape_into(body, memoryview(buf)[: room - 1], 0) == jsonesc.NO_ROOM
            assert buf[room - 1 :] == b"#" * 33


BETWEENS = [jsonesc.python_escape_between] + ([jsonesc.escape_between] if jsonesc.compiled else [])


@pytest.mark.parametrize("escape_between", BETWEENS)
@settings(max_examples=300)
@given(
    head=st.binary(max_size=40),
    body=st.one_of(BODY, ONE_SPECIAL),
    tail=st.binary(max_size=20),
    pos=st.integers(0, 10),
)
def test_a_payload_between_its_json_is_head_escaped_body_tail(  # type: ignore[no-untyped-def]
    escape_between, head: bytes, body: bytes, tail: bytes, pos: int
) -> None:
    want = reference(body)
    buf = bytearray(b"#" * (pos + len(head) + 6 * len(body) + len(tail) + 8))
    end = escape_between(memoryview(buf), pos, head, body, tail)
    if want is None:
        assert end == jsonesc.INVALID
        return
    whole = head + want + tail
    assert end == pos + len(whole) and bytes(buf[pos:end]) == whole and buf[:pos] == b"#" * pos
    # Exactly its room is enough; a byte less anywhere (in the head, body or tail) is refused,
    # and nothing is written past the buffer given.
    for cut in sorted({0, 1, len(tail), len(tail) + 1, len(tail) + len(want), len(whole)}):
        if cut > len(whole):
            continue
        room = pos + len(whole) - cut
        short = bytearray(b"#" * (room + 16))
        got = escape_between(memoryview(short)[:room], pos, head, body, tail)
        assert got == (pos + len(whole) if cut == 0 else jsonesc.NO_ROOM)
        assert short[room:] == b"#" * 16


ROUNDERS = [jsonesc.python_round3_text] + ([jsonesc.round3_text] if jsonesc.compiled else [])
# Ties of the third decimal held exactly in binary, both sides of every power of two, the range's
# edge, subnormals: where a rounding that is not round()'s would show.
EXACT_TIES = [k / 16 for k in range(-64, 64)] + [k / 1024 + 2.0**30 for k in range(16)]
EDGES = [2.0**e * f for e in range(-1074, 40, 7) for f in (1.0, 1.0 + 2**-52, 2.0 - 2**-52)]
EDGES += [1e11, -1e11, 99999999999.9995, 1e11 - 2**-14, 0.0005, 0.0015, 0.0025, -0.0005, 5e-324]


@pytest.mark.parametrize("round3_text", ROUNDERS)
@settings(max_examples=2000)
@given(
    value=st.one_of(
        st.floats(),
        st.floats(-1e6, 1e6),
        st.floats(-1e11, 1e11),
        st.floats(-1e-2, 1e-2),
        st.integers(-(10**12), 10**12).map(lambda k: k / 2000),  # exactly half-way and near it
        st.integers(-(10**12), 10**12).map(lambda k: k / 1000),
        st.sampled_from(EXACT_TIES + EDGES),
    )
)
def test_a_rounded_latency_is_orjsons_text_of_round(round3_text, value: float) -> None:  # type: ignore[no-untyped-def]
    got = round3_text(value)
    if got is None:  # only where the C version hands back to round() and orjson
        assert not abs(value) < 1e11
        return
    assert got == orjson.dumps(round(value, 3))


def test_the_compiled_build_escapes_in_c() -> None:
    if os.environ.get("MODELTAP_EXPECT_COMPILED") == "1":
        assert jsonesc.compiled, "modeltap.core._jsonesc was not built"


CONTENT_TYPE = st.sampled_from(
    [None, "text/csv", "application/json", "text/event-stream", "application/x-npy", "TEXT/CSV; q"]
)


# orjson refuses lone surrogates (so does encode_record)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
HEADERS = st.one_of(
    st.none(), st.just({"x-t": '"data":""'}), st.dictionaries(TEXT, TEXT, max_size=3)
)


@st.composite
def items(draw: st.DrawFn) -> CaptureItem:
    stream = None
    if draw(st.booleans()):
        stream = StreamTiming(
            draw(st.floats(0, 100)),
            draw(st.floats(0, 100)),
            draw(st.integers(0, 10**6)),
            draw(st.integers(0, 10**9)),
            draw(st.sampled_from(["complete", "client_disconnected", "upstream_failed"])),
            truncated=draw(st.booleans()),
        )
    return CaptureItem(
        inference_time=draw(st.floats(0, 4e9)),
        method=draw(st.one_of(st.sampled_from(["POST", "GET"]), TEXT)),
        path=draw(st.one_of(st.sampled_from(["/invocations", '/a"b\\c\n', "/é"]), TEXT)),
        status=draw(st.one_of(st.sampled_from([200, 500]), st.integers(0, 999))),
        model_latency_s=draw(
            st.one_of(st.floats(0, 10), st.floats(allow_nan=False), st.floats(1e-9, 1e-5))
        ),
        inference_id=draw(st.one_of(st.none(), TEXT)),
        target_model=draw(st.one_of(st.none(), st.just("m.tar.gz"), TEXT)),
        input_body=draw(st.one_of(st.none(), BODY)),
        input_content_type=draw(st.one_of(CONTENT_TYPE, TEXT)),
        output_body=draw(st.one_of(st.none(), BODY)),
        output_content_type=draw(CONTENT_TYPE),
        request_headers=draw(HEADERS),
        response_headers=draw(HEADERS),
        stream=stream,
        input_recorded=draw(st.booleans()),
        output_recorded=draw(st.booleans()),
        genai_fields=draw(
            st.one_of(
                st.none(),
                st.just({"data": ""}),
                st.dictionaries(
                    TEXT,
                    st.one_of(TEXT, st.integers(-(10**18), 10**18), st.floats(0, 1e6)),
                    max_size=3,
                ),
            )
        ),
    )


@settings(max_examples=600)
@given(item=items(), pos=st.integers(0, 20))
def test_records_written_into_a_buffer_are_encode_records(item: CaptureItem, pos: int) -> None:
    want = encode_record(item, ENC, "e-1")
    buf = bytearray(b"#" * (pos + 7 * len(want) + 100))
    end = encode_record_into(item, ENC, "e-1", memoryview(buf), pos, None)
    assert bytes(buf[pos:end]) == want
    exact = bytearray(pos + len(want))
    got = encode_record_into(item, ENC, "e-1", memoryview(exact), pos, None)
    assert got == len(exact)
    assert bytes(exact[pos:]) == want
    for cut in (1, len(want) // 2, len(want) - 1):  # every piece's room check
        short = memoryview(bytearray(pos + len(want) - cut))
        assert encode_record_into(item, ENC, "e-1", short, pos, None) == -1


PUTS = [jsonesc.python_put] + ([jsonesc.put] if jsonesc.compiled else [])


@pytest.mark.parametrize("put", PUTS)
def test_put_copies_bytes_and_ascii_text_or_nothing(put) -> None:  # type: ignore[no-untyped-def]
    buf = bytearray(b"#" * 10)
    assert put(memoryview(buf), 2, b"ab", "cd", b"") == 6
    assert buf == b"##abcd####"
    assert put(memoryview(buf), 6, b"abc", "de") == -1  # one byte short: nothing written
    assert buf == b"##abcd####"
    assert put(memoryview(buf), 6, b"ab", "cd") == 10
    assert buf == b"##abcdabcd"
    assert put(memoryview(buf), 10) == 10
    with pytest.raises((TypeError, UnicodeEncodeError)):
        put(memoryview(buf), 0, "é")
    with pytest.raises(ValueError):
        put(memoryview(buf), 11, b"")


def test_a_body_that_is_not_utf8_is_base64_in_the_record() -> None:
    it = CaptureItem(1.7e9, "POST", "/p", 200, 0.001, None, None, b"ok\xff", "text/csv", None, None)
    buf = bytearray(4096)
    end = encode_record_into(it, ENC, "e-1", memoryview(buf), 10, None)
    rec = orjson.loads(bytes(buf[10:end]))
    assert rec["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(rec["captureData"]["endpointInput"]["data"]) == b"ok\xff"
    assert bytes(buf[10:end]) == encode_record(it, ENC, "e-1")


@given(st.one_of(st.floats(-1e15, 1e15), st.integers(-(10**12), 10**12).map(lambda k: k / 7)))
def test_a_records_second_is_the_floor_division_of_its_time(epoch_seconds: float) -> None:
    from modeltap.core import record

    assert record._floor(epoch_seconds) == int(epoch_seconds // 1)


UUID_TEXTS = [jsonesc.python_uuid4_texts] + ([jsonesc.uuid4_texts] if jsonesc.compiled else [])


@pytest.mark.parametrize("uuid4_texts", UUID_TEXTS)
@given(raw=st.lists(st.binary(min_size=16, max_size=16), max_size=70).map(b"".join))
def test_event_ids_are_the_uuid4_texts_of_their_bytes(uuid4_texts, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    import uuid

    want = [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, len(raw), 16)]
    assert uuid4_texts(raw) == want
    with pytest.raises(ValueError):
        uuid4_texts(raw + b"x")
