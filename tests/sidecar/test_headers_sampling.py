from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from sidecar.exchange import Exchange
from sidecar.headers import with_length
from sidecar.metrics import SidecarMetrics
from sidecar.sampling import Sampler, hash_fraction
from sidecar.server import ProxyServer
from tests.fuzz.test_http_server import FakeTransport, config, echo_length


def test_sampler_edges_and_rate() -> None:
    assert not Sampler(0, False).sampled("x")
    assert Sampler(100, False).sampled(None)
    values = iter([0.05, 0.2])
    s = Sampler(10, False, rand=lambda: next(values))
    assert s.sampled(None) and not s.sampled(None)


def test_inference_id_sampling_is_stable_and_uniform() -> None:
    s = Sampler(25, True, rand=lambda: 0.0)  # rand would always sample: the id decides
    ids = [f"id-{i}" for i in range(20000)]
    first = [s.sampled(i) for i in ids]
    assert first == [s.sampled(i) for i in ids]
    assert 0.23 < sum(first) / len(ids) < 0.27
    assert hash_fraction("abc") == hash_fraction("abc")
    assert s.sampled(None)  # no id: falls back to random


def test_forwardable_keeps_order_and_drops_hop_by_hop_raw() -> None:
    from sidecar.headers import forwardable, with_length

    plain = [(b"Content-Type", b"text/csv"), (b"Content-Length", b"3"), (b"X-A", b"1")]
    assert forwardable(plain) == plain
    hop = [(b"X-A", b"1"), (b"Connection", b"close, X-B"), (b"X-B", b"2"), (b"Keep-Alive", b"5"),
           (b"Transfer-Encoding", b"chunked"), (b"x-c", b"3")]  # fmt: skip
    assert forwardable(hop) == [(b"X-A", b"1"), (b"x-c", b"3")]
    assert with_length(plain, 3) is plain
    assert with_length(plain, 7) == [(b"Content-Type", b"text/csv"), (b"Content-Length", b"7"),
                                     (b"X-A", b"1")]  # fmt: skip
    assert with_length(plain, None) == [(b"Content-Type", b"text/csv"), (b"X-A", b"1")]
    assert with_length([(b"X-A", b"1")], 0) == [(b"X-A", b"1"), (b"Content-Length", b"0")]


def _reference_forwardable(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The rule: every hop-by-hop field, and every field a Connection header names (before or
    after it), dropped; the rest as received, in order."""
    from sidecar.headers import HOP_BY_HOP

    drop = {h.encode() for h in HOP_BY_HOP}
    for name, value in raw:
        if name.lower() == b"connection":
            drop |= {t.strip().lower() for t in value.split(b",") if t.strip()}
    return [(n, v) for n, v in raw if n.lower() not in drop]


_HOP_TEST_NAMES = [b"Server", b"Date", b"Content-Type", b"Connection", b"CONNECTION",
                   b"Keep-Alive", b"TE", b"te", b"Trailer", b"Upgrade", b"Transfer-Encoding",
                   b"Expect", b"Proxy-Connection", b"X-Hop", b"x-hop", b"X-Long-Hop-Name",
                   b"Content-Length"]  # fmt: skip
_HOP_TEST_VALUES = [b"1", b"", b"close", b"x-hop", b" X-Long-Hop-Name ,te", b",,"]


@given(
    st.lists(
        st.tuples(st.sampled_from(_HOP_TEST_NAMES), st.sampled_from(_HOP_TEST_VALUES)), max_size=8
    )
)
def test_forwardable_drops_what_the_rule_drops(raw: list[tuple[bytes, bytes]]) -> None:
    """Names are lower-cased only when their length is a hop-by-hop name's: the fields kept
    are still exactly the rule's (fields a Connection header names, of any length, included)."""
    from sidecar.headers import forwardable

    assert forwardable(raw) == _reference_forwardable(raw)


_FIELD_NAMES = [b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Content-Type",
                b"X-A", b"x-a", b"Content-Lengthy", b"Date"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    fields=st.lists(
        st.tuples(st.sampled_from(_FIELD_NAMES), st.sampled_from([b"1", b"5", b"", b"a b"])),
        max_size=6,
    ),
    length=st.one_of(st.none(), st.integers(0, 10)),
)
def test_response_head_is_the_fields_with_their_length_set(
    fields: list[tuple[bytes, bytes]], length: int | None
) -> None:
    """The answer's head is every field as given, in order, with Content-Length set where the
    first one is (appended when there is none) or every one removed when no length is sent:
    ``with_length``'s rule, byte for byte (repeated fields and odd casing kept)."""

    async def answer() -> bytes:
        loop = asyncio.get_running_loop()
        server = ProxyServer(echo_length, config(), SidecarMetrics(CollectorRegistry()))
        conn = server()
        transport = FakeTransport(loop)
        transport.protocol = conn
        conn.connection_made(transport)  # type: ignore[arg-type]
        ex = Exchange(conn, "GET", "/", False, [], None, False, True, False)
        ex.respond(200, b"OK", fields, b"xyz", length)
        conn.cut()
        return bytes(transport.out)

    expected = b"HTTP/1.1 200 OK\r\n" + b"".join(
        b"%s: %s\r\n" % kv for kv in with_length(fields, length)
    )
    assert asyncio.run(answer()) == expected + b"\r\nxyz"


_LOOKUP_NAMES = [b"x-id", b"X-Id", b"X-ID", b"content-type", b"Content-Type", b"x-model", b"X-Mode",
                 b"x-idd", b"Host"]  # fmt: skip


@given(
    fields=st.lists(
        st.tuples(st.sampled_from(_LOOKUP_NAMES), st.sampled_from([b"1", b"", b"a\xff", b"b c"])),
        max_size=6,
    ),
    names=st.lists(st.sampled_from([b"x-id", b"content-type", b"x-model", b"x-mode"]), min_size=3,
                   max_size=3),
)  # fmt: skip
def test_three_fields_in_one_pass_are_the_fields_looked_up_one_by_one(
    fields: list[tuple[bytes, bytes]], names: list[bytes]
) -> None:
    """The capture record's request fields (inference id, target model, content type) read in
    one pass are what three lookups give: the first of each name whatever its casing, decoded,
    None when absent (and the same field when two of the names are one)."""

    async def lookups() -> tuple[object, object]:
        server = ProxyServer(echo_length, config(), SidecarMetrics(CollectorRegistry()))
        ex = Exchange(server(), "POST", "/", False, fields, None, False, True, False)
        a, b, c = names
        return ex.headers3(a, b, c), (ex.header(a), ex.header(b), ex.header(c))

    one_pass, one_by_one = asyncio.run(lookups())
    assert one_pass == one_by_one
