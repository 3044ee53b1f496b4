"""Hop-by-hop header handling for a forwarding proxy (RFC 9110 section 7.6.1).

Connection-specific fields describe one hop, not the message: they are removed before a message is
forwarded, together with every field the Connection header names. Everything else passes untouched.
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

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


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """A copy of ``headers`` without hop-by-hop fields and the fields Connection names."""
    drop = set(HOP_BY_HOP)
    for value in headers.getall("Connection", ()):
        drop.update(tok.strip().lower() for tok in value.split(",") if tok.strip())
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out
