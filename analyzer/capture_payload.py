"""One captured payload, read: where it is in a record, its format, its rows in the serving
protocols modeltap knows, and the values at a JSON path.

The window reader (:mod:`analyzer.payloads`, payloads -> feature columns) and the ground-truth
merge (:mod:`analyzer.groundtruth.predictions`, outputs -> predictions) both start here, so a new
encoding, content type or serving protocol is taught to both in one place.

Formats: a payload is CSV or JSON by its ``encoding`` (SageMaker writes ``CSV``/``JSON`` for
text it kept as is), else by its observed content type (``*csv``, ``*json``, ``*jsonlines``);
base64 payloads are decoded first; anything else is binary and not read.

Serving protocols, as rows (:func:`rows_from_json`): SageMaker/KServe v1/TF-Serving
``{"instances": [...]}`` and ``{"predictions": [...]}``, TF-Serving's columnar
``{"inputs": {"a": [...]}}``, the Open Inference Protocol v2 ``{"inputs"|"outputs": [tensors]}``,
Seldon's ``{"data": {"ndarray": [...], "names": [...]}}``, a list of rows, one row, one object.

JSON paths (:func:`resolve`, :func:`rows_at`) use the one grammar of
:mod:`modeltap.core.jsonpath`; stepping into a v2 tensor's ``data`` gives it its ``shape``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from modeltap.core.errors import RecordError
from modeltap.core.jsonpath import Step, compile_path
from modeltap.core.record import decode_payload

INPUT, OUTPUT = "endpointInput", "endpointOutput"

Kind = Literal["csv", "json", "binary"]


class PayloadError(ValueError):
    """A payload that cannot be read; ``reason`` is the label the caller counts it under."""

    def __init__(self, message: str, reason: str = "bad_json") -> None:
        super().__init__(message)
        self.reason = reason


def kind(payload: Mapping[str, Any]) -> Kind:
    """'csv', 'json' or 'binary', from the encoding and then the observed content type."""
    enc = str(payload.get("encoding", "")).upper()
    if enc == "CSV":
        return "csv"
    if enc == "JSON":
        return "json"
    ctype = str(payload.get("observedContentType", "")).split(";", 1)[0].strip().lower()
    if ctype.endswith("csv"):
        return "csv"
    if ctype.endswith(("json", "jsonlines")):
        return "json"
    return "binary"


def read_side(record: Mapping[str, Any], side: str) -> tuple[Literal["csv", "json"], bytes] | None:
    """The format and bytes of one side (:data:`INPUT` or :data:`OUTPUT`) of a capture record;
    None when the record has no such side.

    Raises PayloadError with reason ``bad_encoding`` (data that does not decode) or
    ``unsupported_content_type`` (a binary payload), in that order.
    """
    capture = record.get("captureData")
    payload = capture.get(side) if isinstance(capture, dict) else None
    if not isinstance(payload, dict):
        return None
    try:
        raw = decode_payload(payload)
    except (RecordError, ValueError) as exc:  # ValueError: base64 text that is not ASCII
        raise PayloadError(str(exc), "bad_encoding") from None
    found = kind(payload)
    if found == "binary":
        raise PayloadError("neither CSV nor JSON", "unsupported_content_type")
    return found, raw


# --- Serving protocols ------------------------------------------------------------------------


def rows_from_json(doc: Any, output: bool) -> list[Any]:
    """The rows of a decoded JSON payload: each a list (positional), a dict (named) or a scalar."""
    if isinstance(doc, dict):
        for key in ("predictions", "outputs") if output else ("instances", "inputs"):
            if key in doc:
                inner = doc[key]
                if (
                    isinstance(inner, list)
                    and inner
                    and all(isinstance(t, dict) and "data" in t for t in inner)
                ):
                    return _rows_from_v2(inner)
                if isinstance(inner, list):
                    return inner
                if isinstance(
                    inner, dict
                ):  # TF-Serving columnar: {"inputs": {"a": [..], "b": [..]}}
                    return _rows_from_columns(inner)
                return [inner]
        data = doc.get("data")
        if isinstance(data, dict) and "ndarray" in data:  # Seldon
            names = data.get("names")
            rows = data["ndarray"]
            if not isinstance(rows, list):
                raise PayloadError("Seldon ndarray is not a list")
            if isinstance(names, list) and rows and isinstance(rows[0], list):
                return [dict(zip(names, r, strict=False)) for r in rows]
            return list(rows)
        return [doc]  # one object of features
    if isinstance(doc, list):
        if doc and not isinstance(doc[0], list | dict):
            return [doc]  # one positional row
        return doc
    return [doc]


def _rows_from_columns(columns: dict[str, Any]) -> list[Any]:
    names = list(columns)
    values = [columns[n] if isinstance(columns[n], list) else [columns[n]] for n in names]
    return [dict(zip(names, r, strict=False)) for r in zip(*values, strict=False)]


def _rows_from_v2(tensors: list[dict[str, Any]]) -> list[Any]:
    """Open Inference Protocol v2 tensors -> named rows (a 2-D tensor gives ``name_0..name_k``)."""
    columns: dict[str, Any] = {}
    n_rows: int | None = None
    for t in tensors:
        name = str(t.get("name", f"t{len(columns)}"))
        if not isinstance(t["data"], list):
            raise PayloadError("a v2 tensor's data is not a list")
        shape = t.get("shape") or [len(t["data"])]
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise PayloadError("a v2 tensor's shape is not a list of sizes")
        arr = np.asarray(t["data"], dtype=object).reshape(
            [int(s) for s in shape] if len(shape) > 1 else (-1,)
        )
        n = arr.shape[0]
        if n_rows is not None and n != n_rows:
            raise PayloadError("v2 tensors disagree on the batch size")
        n_rows = n
        if arr.ndim == 1:
            columns[name] = arr.tolist()
        else:
            flat = arr.reshape(n, -1)
            if len(tensors) == 1:
                return flat.tolist()  # one tensor: positional rows, named by the baseline
            for j in range(flat.shape[1]):
                columns[f"{name}_{j}"] = flat[:, j].tolist()
    return _rows_from_columns(columns)


# --- JSON paths -------------------------------------------------------------------------------

# Where a prediction is in an output document when no path is configured, in this order.
DEFAULT_JSON_PATHS = ("predictions", "outputs[0].data")

_MISSING: Any = object()


def _tensor_data(obj: dict[str, Any], data: Any) -> Any:
    """An Open Inference Protocol v2 tensor's flat ``data`` in its declared (row-major) shape."""
    shape = obj.get("shape")
    if (
        not isinstance(data, list)
        or not isinstance(shape, list)
        or len(shape) < 2
        or not all(isinstance(s, int) and s >= 0 for s in shape)
        or math.prod(shape) != len(data)
    ):
        return data
    if data and isinstance(data[0], list):
        return data  # already nested
    return np.asarray(data, dtype=object).reshape(shape).tolist()


def resolve(doc: Any, steps: Sequence[Step]) -> tuple[list[Any], bool]:
    """Evaluate ``steps`` on ``doc``: ``(values, projected)``; unresolved values are ``_MISSING``.

    Stepping into a v2 tensor's ``data`` reshapes it to the tensor's ``shape``, so ``[*]``
    iterates the batch: ``outputs[0].data[*][1]`` is each row's second value of a ``[n, 2]``
    tensor.
    """
    values = [doc]
    projected = False
    for step in steps:
        if step.kind in ("star", "slice") and not any(isinstance(v, list) for v in values):
            return [_MISSING], False  # nothing to project over: the path is not there
        out: list[Any] = []
        for v in values:
            if v is _MISSING:
                out.append(v)
            elif step.kind == "key":
                if isinstance(v, dict) and step.key in v:
                    found = v[step.key]
                    out.append(_tensor_data(v, found) if step.key == "data" else found)
                else:
                    out.append(_MISSING)
            elif step.kind == "index":
                ok = isinstance(v, list) and -len(v) <= step.index < len(v)
                out.append(v[step.index] if ok else _MISSING)
            elif step.kind == "filter":
                match = _MISSING
                if isinstance(v, list):
                    for item in v:
                        if isinstance(item, dict) and item.get(step.key) == step.value:
                            match = item
                            break
                out.append(match)
            elif isinstance(v, list):  # star or slice; other values drop out of a projection
                out.extend(v[step.slice] if step.slice is not None else v)
        projected = projected or step.kind in ("star", "slice")
        values = out
    return values, projected


def rows_at(doc: Any, steps: Sequence[Step]) -> list[Any] | None:
    """Per-row values at a path: a projection, a list (one value per row) or one scalar row.

    None when a non-projected path does not resolve (the record has no such attribute).
    One-element lists (``[[0.8], [0.3]]``, a ``[n, 1]`` tensor) count as their element; a row
    where a projected path does not resolve is None.
    """
    values, projected = resolve(doc, steps)
    if not projected:
        value = values[0]
        if value is _MISSING:
            return None
        values = value if isinstance(value, list) else [value]
    return [None if v is _MISSING else unwrap(v) for v in values]


def default_rows(doc: Any) -> list[Any]:
    """Per-row predictions of an output document without a configured path: the first of
    :data:`DEFAULT_JSON_PATHS` that resolves, else the list's elements, else the document."""
    if isinstance(doc, dict):
        for path in DEFAULT_JSON_PATHS:
            found = rows_at(doc, compile_path(path))
            if found is not None:
                return found
    return [unwrap(v) for v in doc] if isinstance(doc, list) else [doc]


def unwrap(v: Any) -> Any:
    """A one-element list as its element, repeatedly (``[[0.8]]`` is ``0.8``)."""
    while isinstance(v, list) and len(v) == 1:
        v = v[0]
    return v
