"""Hop-by-hop header handling for a forwarding proxy (RFC 9110 section 7.6.1).

Connection-specific fields describe one hop, not the message: they are removed before a message is
forwarded, together with every field the Connection header names. Everything else passes untouched.
"""

from __future__ import annotations

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        # The proxy answers 100-continue itself; the upstream request is sent whole.
        "expect",
    }
)


_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)
# A name of another length is not hop-by-hop (by itself): no lower-case copy of it is made.
HOP_LENGTHS = frozenset(len(h) for h in _HOP_BYTES)


def forwardable(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """End-to-end fields of a raw header list, names, values and order as received."""
    kept = []
    named: set[bytes] = set()
    for field in raw:
        name = field[0]
        if len(name) not in HOP_LENGTHS:
            kept.append(field)
            continue
        low = name.lower()
        if low not in _HOP_BYTES:
            kept.append(field)
        elif low == b"connection":
            named.update(t.strip().lower() for t in field[1].split(b","))
    if len(kept) == len(raw):
        return raw  # the usual message: nothing to drop
    named -= _HOP_BYTES
    named.discard(b"")
    if named:  # fields the Connection header names are hop-by-hop too, wherever they are
        kept = [field for field in kept if field[0].lower() not in named]
    return kept


def with_length(fields: list[tuple[bytes, bytes]], length: int | None) -> list[tuple[bytes, bytes]]:
    """``fields`` with Content-Length set to ``length`` (in place when present) or removed."""
    if length is None:
        return [(n, v) for n, v in fields if n.lower() != b"content-length"]
    value = b"%d" % length
    for i, (name, current) in enumerate(fields):
        if name.lower() == b"content-length":
            if current == value:
                return fields
            return [*fields[:i], (name, value), *fields[i + 1 :]]
    return [*fields, (b"Content-Length", value)]


def pick(raw: list[tuple[bytes, bytes]], names: tuple[bytes, ...]) -> dict[str, str]:
    """The fields among ``names`` (lower-case bytes) present, lower-case names, repeated fields
    joined (for the capture record's allow-listed headers)."""
    found: dict[str, list[str]] = {}
    for name, value in raw:
        low = name.lower()
        if low in names:
            found.setdefault(low.decode("latin-1"), []).append(value.decode("utf-8", "replace"))
    return {k: ", ".join(v) for k, v in found.items()}
