"""Text columns classified and converted to numbers: the compiled one-pass version
(analyzer/_numparse.c) gives the Arrow path's counts and float64 bits, value for value.

Every test here runs in both trees: in the pure-Python checkout ``classify`` takes the Arrow path
and is held to the written rules; in the compiled copy (`make pytest-compiled`) it takes the C
pass and is held to the same rules and, value for value, to the Arrow path.
"""

from __future__ import annotations

import os
import re

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analyzer import numparse
from analyzer.inference import (
    FRACTIONAL,
    INTEGRAL,
    NULL,
    STRING,
    _classify_text_arrow,
    classify,
)

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def rules(values: list[str | None]) -> tuple[list[int], npt.NDArray[np.float64]]:
    """The written rules, value by value: kind (a whole-text match of the number pattern,
    Integral without '.', 'e', 'E') and the correctly rounded value (Python's float)."""
    kinds, out = [], np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            kinds.append(NULL)
        elif _NUMBER.fullmatch(v):
            kinds.append(FRACTIONAL if any(c in v for c in ".eE") else INTEGRAL)
            out[i] = float(v)
        else:
            kinds.append(STRING)
    return kinds, out


def same_bits(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    """Equal float64 bit patterns (so -0.0 is not 0.0), NaN in the same places."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return bool(
        np.array_equal(nan_a, nan_b)
        and np.array_equal(a[~nan_a].view(np.uint64), b[~nan_b].view(np.uint64))
    )


def counts_of(kinds: list[int]) -> list[int]:
    return [kinds.count(k) for k in (NULL, INTEGRAL, FRACTIONAL, STRING)]


PINNED = [
    "0", "7", "-0", "+0", "-7", "+12", "007", "1.", "0.", "-1.", ".5", "+.5", "-.5e1", "1.e5",
    "1e5", "1E+05", "1e-3", "1e0001", "00.5e-3", "2.0", "1e400", "-1e400", "1e-400", "-1e-400",
    "9" * 400, "1" + "0" * 308, "0." + "0" * 400 + "1", "2.4703282292062327e-324",
    "2.4703282292062328e-324", "1.7976931348623157e308", "1.7976931348623158e308",
    "1.7976931348623159e308", "9007199254740993", "9007199254740992", "18446744073709551617",
    "123456789012345678901234", "0.1", "0.30000000000000004", "1e22", "1e23", "9007199254740993e-22",
    "4.35", "1e99999999999999999999", "0e99999999999999999999", "-0e-5",
    "999999999999.99999999", "123456789012.12345678e-5", "0.000000001234567890123456789",
    "12345678.123456789012", "1234567890123456789", "12345678901234567890",
    "", " ", ".", "+", "-", "e5", ".e5", "1e", "1e+", "1e5.5", "1.5.", "++1", "+-1", " 1", "1 ",
    "\t1", "1\n", "1_0", "0x10", "0x1p3", "1d", "1f", "nan", "NaN", "-nan", "inf", "-inf",
    "Infinity", "1,5", "\u0661", "1\x00", "abc", "é1",
]  # fmt: skip


def test_pinned_values_follow_the_rules() -> None:
    values: list[str | None] = [*PINNED, None, None]
    got = classify(pa.array(values, pa.string()))
    kinds, want = rules(values)
    assert got.counts.tolist() == counts_of(kinds)
    assert same_bits(got.values, want)
    # One at a time too: the Arrow path decides per chunk (all numbers or not).
    for v in PINNED:
        one = classify(pa.array([v], pa.string()))
        k, w = rules([v])
        assert one.counts.tolist() == counts_of(k), v
        assert same_bits(one.values, w), v


DIGITS = st.text(alphabet="0123456789", max_size=25)


@st.composite
def numberish(draw: st.DrawFn) -> str:
    """Text that is a number, or nearly one: sign, digits, '.', digits, exponent, in any
    combination, sometimes with a stray character; or a float's own repr."""
    if draw(st.integers(0, 4)) == 0:
        x = draw(st.floats(allow_nan=False, allow_infinity=False))
        return draw(st.sampled_from([repr(x), f"{x:.17g}", f"{x:.3e}", f"{x:f}"[:40]]))
    sign = draw(st.sampled_from(["", "", "-", "+"]))
    whole = draw(DIGITS)
    dot = draw(st.sampled_from(["", ".", "."]))
    frac = draw(DIGITS) if dot else ""
    exp = ""
    if draw(st.booleans()):
        exp = draw(st.sampled_from("eE")) + draw(st.sampled_from(["", "", "-", "+"]))
        exp += draw(st.one_of(st.integers(0, 400).map(str), st.text("0123456789", max_size=5)))
    text = sign + whole + dot + frac + exp
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([" ", ".", "e", "-", "x", "\n", "n"])) + text[at:]
    return text


VALUES = st.lists(
    st.one_of(numberish(), st.none(), st.text(max_size=4), st.sampled_from(PINNED)), max_size=40
)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.integers(0, 5), st.booleans())
@example(["1", "2.5", None, "x"], 1, False)
@example(["9007199254740993", "1e23"], 0, True)
def test_classify_follows_the_rules(values: list[str | None], cut: int, large: bool) -> None:
    arr = pa.array(["pad"] * cut + values, pa.large_string() if large else pa.string())
    arr = arr.slice(cut)  # a slice: the buffers start before the array
    got = classify(arr)
    kinds, want = rules(values)
    assert got.counts.tolist() == counts_of(kinds)
    assert same_bits(got.values, want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(numberish(), st.none()), max_size=40), st.integers(0, 3))
def test_the_compiled_pass_is_the_arrow_path_value_for_value(
    values: list[str | None], cut: int
) -> None:
    if not numparse.compiled:
        pytest.skip("analyzer._numparse is not built (make compiled)")
    arr = pa.array(["x"] * cut + values, pa.string()).slice(cut)
    counts, got, kinds = numparse.classify_buffers(arr, kinds=True)
    want_kinds, want = rules(values)
    assert kinds is not None and kinds.tolist() == want_kinds
    assert same_bits(got, want)
    if values and any(v is not None for v in values):
        arrow = _classify_text_arrow(arr, None)
        assert list(counts) == arrow.counts.tolist()
        assert same_bits(got, arrow.values)


def test_no_data_buffer_and_all_empty_strings() -> None:
    arr = pa.array(["", None, ""], pa.string())
    got = classify(arr)
    assert got.counts.tolist() == [1, 0, 0, 2]
    assert np.isnan(got.values).all()


def test_the_compiled_build_classifies_in_c() -> None:
    if os.environ.get("MODELTAP_EXPECT_COMPILED") == "1":
        assert numparse.compiled, "analyzer._numparse was not built"
    else:
        assert not numparse.compiled, "a stray build of analyzer._numparse shadows the source"


_SPECIAL = np.frombuffer(b'\n\\"\x1f\x00\xff a', dtype=np.uint8)
LONG = st.tuples(st.integers(0, 2**32 - 1), st.integers(4000, 20000), st.integers(1, 8)).map(
    lambda t: (
        (rng := np.random.default_rng(t[0])).choice(rng.choice(_SPECIAL, t[2]), t[1]).tobytes()
    )
)  # long runs of a few of the counted bytes: more than 255 of one in a counter's lane


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=100)
    | st.lists(st.sampled_from(b'\n\\"\x1f\x20\x00\xff,a'), max_size=70).map(bytes)
    | LONG
)
def test_the_byte_counts_of_a_chunk(chunk: bytes) -> None:
    # canonical_chunk's checks: line ends, control bytes, backslashes, quotes (any length: the
    # compiled pass reads 16 bytes at a time, then the rest one by one).
    if not numparse.compiled:
        pytest.skip("analyzer._numparse is not built (make compiled)")
    buf = np.frombuffer(chunk, dtype=np.uint8)
    want = [int((buf == 0x0A).sum()), int((buf < 0x20).sum()), int((buf == 0x5C).sum()),
            int((buf == 0x22).sum())]  # fmt: skip
    assert list(numparse.byte_counts(chunk)) == want
