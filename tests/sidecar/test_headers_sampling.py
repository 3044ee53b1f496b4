from __future__ import annotations

from sidecar.sampling import Sampler, hash_fraction


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
