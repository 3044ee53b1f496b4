"""Ground-truth files and the prediction reader: labels parse or are counted by reason."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from analyzer.capture_payload import rows_at
from analyzer.groundtruth.merge import merge
from analyzer.groundtruth.predictions import PredictionSpec, read_predictions
from analyzer.groundtruth.records import REASONS, Labels, parse_labels
from modeltap.core.jsonpath import compile_path
from tests.fuzz.strategies import FUZZ, JSON, PROTOCOL_JSON, TEXT, records, roundtrip

SPECS = [
    PredictionSpec(),
    PredictionSpec(inference_index=1),
    PredictionSpec(probability_index=0),
    PredictionSpec(inference_index=0, probability_index=2),
    PredictionSpec(inference_attribute="predictions[*].label"),
    PredictionSpec(probability_attribute="probabilities[1]"),
    PredictionSpec(
        inference_attribute="outputs[0].data[*]",
        probability_attribute="outputs[?name=='proba'].data[*][1]",
    ),
]
PATHS = ["predictions", "outputs[0].data", "predictions[*].label", "data[*][1]",
         "outputs[?name=='p'].data[1:]", "$['a.b'][-1]", "[*]"]  # fmt: skip


@FUZZ
@given(st.binary(max_size=3000) | st.lists(JSON, max_size=6).map(
    lambda docs: b"\n".join(orjson.dumps(d) for d in docs)))  # fmt: skip
@example(b'{"groundTruthData": {"data": "1"}, "eventMetadata": {"eventId": "a"}}\n[1]\nnope')
@example(
    b'{"groundTruthData": {"data": [1, [2]], "encoding": "JSON"}, "eventMetadata": {"eventId": "a"}}'
)
def test_any_label_file_parses_or_is_counted(data: bytes) -> None:
    labels, stats = parse_labels(data, "k.jsonl")
    assert len(labels) == stats.labels
    assert stats.labels + stats.bad_lines == stats.lines or stats.bad_objects == 1
    assert set(stats.reasons) <= set(REASONS)
    assert all(isinstance(x, str) and x for x in labels.event_id.to_pylist())


@st.composite
def label_sets(draw: st.DrawFn) -> Labels:
    ids = draw(st.lists(TEXT | st.sampled_from(["r", "r:0", "r:1", "x"]), max_size=6))
    texts = draw(st.lists(TEXT | st.sampled_from(["1", "0", "1,0", "a\nb"]), min_size=len(ids),
                          max_size=len(ids)))  # fmt: skip
    return Labels.from_lists(ids, texts)


def with_id(rec: dict[str, Any], rid: str | None) -> dict[str, Any]:
    if rid is not None:
        rec = {**rec, "eventMetadata": {"inferenceId": rid}}
    return rec


@FUZZ
@given(
    st.lists(st.tuples(records(), st.sampled_from([None, "r", "x", ""])), max_size=6),
    label_sets(),
    st.sampled_from(SPECS),
)
@example(
    [({"captureData": {"endpointOutput": {"data": "1\x00,2", "encoding": "CSV"}}}, "r")],
    Labels.from_lists(["r"], ["1"]),
    PredictionSpec(),
)
@example(
    [({"captureData": {"endpointOutput": {"data": '{"probabilities": [0, 1e308, 2]}',
                                          "encoding": "JSON"}}}, "r")],
    Labels.from_lists(["r"], ["1"]),
    PredictionSpec(probability_attribute="probabilities[1]"),
)  # fmt: skip
@example(  # a quoted field spanning lines: Arrow's rows were not the lines (IndexError)
    [({"captureData": {"endpointOutput": {"data": '"\n:', "encoding": "CSV"}}}, "r")],
    Labels.from_lists(["r"], ["1"]),
    PredictionSpec(probability_index=0),
)
@example(
    [({"captureData": {"endpointOutput": {"data": '"\n0', "encoding": "CSV"}}}, "r")],
    Labels.empty(),
    PredictionSpec(),
)
@example(  # base64 text that is not ASCII: ValueError from base64, not RecordError
    [({"captureData": {"endpointOutput": {"data": "\x80", "encoding": "BASE64"}}}, "r")],
    Labels.empty(),
    PredictionSpec(),
)
def test_merge_counts_what_it_cannot_read(
    recs: list[tuple[dict[str, Any], str | None]], labels: Labels, spec: PredictionSpec
) -> None:
    records_ = [with_id(r, rid) for r, rid in recs]
    result = merge(records_, labels, spec)
    s = result.stats
    assert s.records == len(records_)
    assert len(result.y_true) == len(result.y_pred) == s.labelled <= s.predictions
    y_pred, score, stats = read_predictions(records_, spec)
    assert len(y_pred) == stats.predictions == s.predictions
    assert score is None or len(score) == len(y_pred)


@FUZZ
@given(PROTOCOL_JSON.map(roundtrip), st.sampled_from(PATHS))
@example({"outputs": [{"data": [1, 2, 3, 4], "shape": [2, 2]}]}, "outputs[0].data")
@example({"data": [1, 2], "shape": [2, 1, 0]}, "data[*][1]")
def test_rows_at_resolves_any_document(doc: Any, path: str) -> None:
    rows = rows_at(doc, compile_path(path))
    assert rows is None or isinstance(rows, list)
