"""A payload's bytes as the inside of a JSON string, written straight into a buffer.

:func:`escape_into` gives exactly ``orjson.dumps(body.decode("utf-8"))[1:-1]`` (the record
format is orjson's), or refuses a body that is not UTF-8 text. The compiled build (``setup.py``
with ``MODELTAP_COMPILE=1``) has a C version (``_jsonesc.c``) that reads the body once and writes
the buffer once, without the GIL for large bodies; elsewhere the same result comes through
``str`` and orjson.
"""

from __future__ import annotations

import orjson

INVALID = -1  # the body is not UTF-8 text
NO_ROOM = -2  # the buffer has no room for it


def _escape_into(body: bytes, dst: memoryview, pos: int) -> int:
    """Write ``body`` escaped into ``dst`` from ``pos``; the offset after it, INVALID or NO_ROOM."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID
    escaped = orjson.dumps(text)
    end = pos + len(escaped) - 2
    if end > len(dst):
        return NO_ROOM
    dst[pos:end] = memoryview(escaped)[1:-1]
    return end


def _put(dst: memoryview, pos: int, *parts: bytes | str) -> int:
    """Copy ``parts`` (bytes, or ASCII str) one after the other into ``dst`` from ``pos``; the
    offset after them, or -1 when they do not all fit (nothing is written then)."""
    data = b"".join([p if isinstance(p, bytes) else p.encode("ascii") for p in parts])
    end = pos + len(data)
    if pos < 0 or pos > len(dst):
        raise ValueError("pos is outside dst")
    if end > len(dst):
        return -1
    dst[pos:end] = data
    return end


def _escape_between(dst: memoryview, pos: int, head: bytes, body: bytes, tail: bytes) -> int:
    """``head``, ``body`` escaped and ``tail`` into ``dst`` from ``pos`` (one call for a record's
    payload and the JSON around it); the offset after them, INVALID or NO_ROOM."""
    start = _put(dst, pos, head)
    if start < 0:
        return NO_ROOM
    end = _escape_into(body, dst, start)
    if end < 0:
        return end
    end = _put(dst, end, tail)
    return NO_ROOM if end < 0 else end


def _round3_text(value: float) -> bytes | None:
    """``orjson.dumps(round(value, 3))`` (the C version refuses, None, magnitudes of 1e11 and more)."""
    return orjson.dumps(round(value, 3))


# RFC 9562 version 4: the high nibble of byte 6 is 4, the two high bits of byte 8 are 10.
_VERSION_4 = bytes.maketrans(bytes(range(256)), bytes((b & 0x0F) | 0x40 for b in range(256)))
_VARIANT = bytes.maketrans(bytes(range(256)), bytes((b & 0x3F) | 0x80 for b in range(256)))
# Where a UUID's 32 hex digits go in its 36 characters (the rest are the dashes of 8-4-4-4-12).
_HEX_AT = tuple(j for j in range(36) if j not in (8, 13, 18, 23))


def _uuid4_texts(raw: bytes) -> list[str]:
    """One version 4 UUID's text per 16 bytes of ``raw``, as ``str(uuid.UUID(bytes=b,
    version=4))`` gives it; the dashes put in for all of them at once (32 strided copies)."""
    if len(raw) % 16:
        raise ValueError("uuid4_texts takes bytes, 16 per id")
    n = len(raw) // 16
    buf = bytearray(raw)
    buf[6::16] = buf[6::16].translate(_VERSION_4)
    buf[8::16] = buf[8::16].translate(_VARIANT)
    digits = buf.hex().encode("ascii")
    text = bytearray(b"-" * (36 * n))
    for k, j in enumerate(_HEX_AT):
        text[j::36] = digits[k::32]
    ids = text.decode("ascii")
    return [ids[i : i + 36] for i in range(0, 36 * n, 36)]


python_escape_into = _escape_into
python_put = _put
python_escape_between = _escape_between
python_round3_text = _round3_text
python_uuid4_texts = _uuid4_texts
# Bodies of this many bytes or more are escaped without the GIL (0: never, in pure Python).
NOGIL_BYTES = 0

try:
    from modeltap.core._jsonesc import NOGIL_BYTES as NOGIL_BYTES
    from modeltap.core._jsonesc import escape_between as escape_between
    from modeltap.core._jsonesc import escape_into as escape_into
    from modeltap.core._jsonesc import put as put
    from modeltap.core._jsonesc import round3_text as round3_text
    from modeltap.core._jsonesc import uuid4_texts as uuid4_texts
except ImportError:  # not built: the pure-Python checkout
    escape_into = _escape_into
    escape_between = _escape_between
    put = _put
    round3_text = _round3_text
    uuid4_texts = _uuid4_texts

compiled = escape_into is not _escape_into
