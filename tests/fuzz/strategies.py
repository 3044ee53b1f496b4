"""Hypothesis strategies for untrusted input: JSON values as orjson decodes them, and records.

Shared by the property tests here and, as plain generators, not needed by the atheris harnesses
in fuzz/ (those mutate bytes).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import orjson
from hypothesis import settings
from hypothesis import strategies as st

# Small budgets for CI (the whole directory stays well under a minute); set FUZZ_EXAMPLES for a
# longer run, and see fuzz/ for coverage-guided fuzzing.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None)

# Text orjson can hold (no lone surrogates), biased to characters that matter to parsers.
_chars = st.characters(codec="utf-8")  # no lone surrogates
TEXT = st.text(_chars, max_size=20) | st.sampled_from(
    ["", " ", ",", "\n", "\r\n", '"', "1", "1.5", "-0", "1e400", "nan", "true", "a,b\n1,2", "\x00"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # orjson's integer range
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=25,
)
KEYS = st.sampled_from(
    ["instances", "inputs", "predictions", "outputs", "data", "ndarray", "names", "name",
     "shape", "datatype", "label", "probabilities", "features"]
)  # fmt: skip
# JSON documents shaped like serving protocols, with wrong types and shapes mixed in.
PROTOCOL_JSON = st.recursive(
    SCALARS | st.lists(st.integers(-2, 4), max_size=4),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS | TEXT, inner, max_size=5),
    max_leaves=30,
)


def roundtrip(value: Any) -> Any:
    """The value as orjson decodes its own encoding (what a parser of bytes sees)."""
    return orjson.loads(orjson.dumps(value))


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    """An endpointInput/endpointOutput value: usually a payload dict, sometimes anything."""
    kind = draw(st.sampled_from(["csv", "json", "base64", "weird", "any"]))
    ctype = draw(
        st.sampled_from(["text/csv", "application/json", "application/jsonlines",
                         "application/octet-stream", "text/csv; charset=utf-8", ""])
        | TEXT
    )  # fmt: skip
    if kind == "any":
        return draw(JSON)
    if kind == "csv":
        rows = draw(st.lists(st.lists(TEXT | st.floats(allow_nan=False).map(str), max_size=5),
                             max_size=5))  # fmt: skip
        data = "\n".join(",".join(r) for r in rows)
        return {"observedContentType": ctype, "mode": "INPUT", "data": data, "encoding": "CSV"}
    if kind == "json":
        doc = draw(PROTOCOL_JSON)
        data = orjson.dumps(doc).decode() if draw(st.booleans()) else draw(TEXT)
        return {"observedContentType": ctype, "mode": "INPUT", "data": data, "encoding": "JSON"}
    if kind == "base64":
        raw = draw(st.binary(max_size=200) | PROTOCOL_JSON.map(orjson.dumps))
        data = base64.b64encode(raw).decode() if draw(st.booleans()) else draw(TEXT)
        return {"observedContentType": ctype, "mode": "INPUT", "data": data, "encoding": "BASE64"}
    return draw(st.dictionaries(st.sampled_from(["data", "encoding", "observedContentType"]),
                                JSON, max_size=3))  # fmt: skip


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A capture record as parse_records lets through: a dict with a dict captureData."""
    capture: dict[str, Any] = {}
    for side in ("endpointInput", "endpointOutput"):
        if draw(st.integers(0, 9)):
            capture[side] = draw(payloads())
    meta = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "inferenceId": TEXT | JSON,
                "eventId": TEXT | JSON,
                "inferenceTime": st.just("2024-01-01T00:00:00Z") | TEXT,
            },
        )
        | JSON
    )
    rec: dict[str, Any] = roundtrip({"captureData": capture, "eventMetadata": meta})
    return rec
