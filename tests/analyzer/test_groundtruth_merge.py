from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest

from analyzer.capture_payload import resolve, rows_at
from analyzer.groundtruth.merge import merge
from analyzer.groundtruth.predictions import PredictionSpec
from analyzer.groundtruth.records import Labels
from modeltap.core.jsonpath import compile_path


def rec(out: Any, *, eid: str = "e", iid: str | None = None, ctype: str | None = None,
        encoding: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A capture record whose endpointOutput is ``out`` (text, or a JSON document)."""
    if isinstance(out, str):
        ctype, encoding, data = ctype or "text/csv", encoding or "CSV", out
    else:
        ctype, encoding, data = (
            ctype or "application/json",
            encoding or "JSON",
            orjson.dumps(out).decode(),
        )
    meta = {"eventId": eid, "inferenceTime": "2024-01-01T00:00:00Z"}
    if iid is not None:
        meta["inferenceId"] = iid
    payload = {"observedContentType": ctype, "mode": "OUTPUT", "data": data, "encoding": encoding}
    return {"captureData": {"endpointOutput": payload}, "eventMetadata": meta, "eventVersion": "0"}


def labels(**by_id: str) -> Labels:
    return Labels.from_lists(list(by_id), list(by_id.values()))


# --- the path resolver ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "doc", "rows"),
    [
        ("predictions[0].label", {"predictions": [{"label": "cat"}, {"label": "dog"}]}, ["cat"]),
        (
            "predictions[*].label",
            {"predictions": [{"label": "cat"}, {"label": "dog"}]},
            ["cat", "dog"],
        ),
        ("predictions[-1].label", {"predictions": [{"label": "cat"}, {"label": "dog"}]}, ["dog"]),
        ("probabilities[1]", {"probabilities": [0.2, 0.8]}, [0.8]),
        ("$.probabilities[1]", {"probabilities": [0.2, 0.8]}, [0.8]),
        ("predictions", {"predictions": [1, 0, 1]}, [1, 0, 1]),
        ("predictions", {"predictions": [[0.9], [0.1]]}, [0.9, 0.1]),  # [n, 1] unwraps
        ("predictions[*][1]", {"predictions": [[0.1, 0.9], [0.7, 0.3]]}, [0.9, 0.3]),
        ("scores[1::2]", {"scores": [0.1, 0.9, 0.7, 0.3]}, [0.9, 0.3]),
        ("scores[:1]", {"scores": [0.1, 0.9]}, [0.1]),
        ("['a.b'].c", {"a.b": {"c": 5}}, [5]),
        ("[0].p", [{"p": 1}], [1]),
        ("", 0.7, [0.7]),
        ("a[*].b[*]", {"a": [{"b": [1, 2]}, {"b": [3]}]}, [1, 2, 3]),  # projections flatten
        # Open Inference Protocol v2: data is read in its declared shape.
        (
            "outputs[0].data[0]",
            {"outputs": [{"name": "p", "shape": [1], "datatype": "FP32", "data": [0.8]}]},
            [0.8],
        ),
        ("outputs[0].data[0]", {"outputs": [{"name": "p", "shape": [1, 1], "data": [0.8]}]}, [0.8]),
        (
            "outputs[0].data",
            {"outputs": [{"name": "p", "shape": [3], "data": [1, 0, 1]}]},
            [1, 0, 1],
        ),
        (
            "outputs[0].data",
            {"outputs": [{"name": "p", "shape": [3, 1], "data": [1, 0, 1]}]},
            [1, 0, 1],
        ),
        (
            "outputs[0].data[*][1]",
            {"outputs": [{"shape": [2, 2], "data": [0.1, 0.9, 0.6, 0.4]}]},
            [0.9, 0.4],
        ),
        ("outputs[0].data[0][1]", {"outputs": [{"shape": [1, 2], "data": [0.1, 0.9]}]}, [0.9]),
        (
            "outputs[?name=='proba'].data[*][1]",
            {
                "outputs": [
                    {"name": "label", "shape": [2], "data": [1, 0]},
                    {"name": "proba", "shape": [2, 2], "data": [0.2, 0.8, 0.9, 0.1]},
                ]
            },
            [0.8, 0.1],
        ),
    ],
)
def test_paths(path: str, doc: Any, rows: list[Any]) -> None:
    assert rows_at(doc, compile_path(path)) == rows


def test_unresolved_paths() -> None:
    doc = {"predictions": [{"label": 1}, {"score": 0.3}]}
    assert rows_at(doc, compile_path("missing")) is None
    assert rows_at(doc, compile_path("predictions[5]")) is None
    assert rows_at(doc, compile_path("predictions.label")) is None  # a key on a list
    assert rows_at(doc, compile_path("outputs[?name=='x']")) is None
    assert rows_at(doc, compile_path("missing[*].score")) is None  # nothing to project over
    assert rows_at(doc, compile_path("predictions[*].score")) == [None, 0.3]  # a row lacks it
    assert rows_at({"p": []}, compile_path("p[*]")) == []
    values, projected = resolve(doc, compile_path("predictions[*].label"))
    assert projected and values[0] == 1 and values[1] is not None and len(values) == 2
    assert rows_at(doc, compile_path("predictions[*].label"))[0] == 1  # type: ignore[index]


@pytest.mark.parametrize("bad", ["a..b", "a[", "a[x]", "a]b", "a[0]b", "a[::0]", "[?name='x']"])
def test_bad_paths_raise_naming_the_position(bad: str) -> None:
    with pytest.raises(ValueError, match="path"):
        compile_path(bad)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="inference_index"):
        PredictionSpec(inference_index=-1)
    with pytest.raises(ValueError, match="probability_threshold"):
        PredictionSpec(probability_threshold=float("nan"))
    with pytest.raises(ValueError, match="path"):
        PredictionSpec(inference_attribute="a[")


# --- CSV outputs -------------------------------------------------------------------------------


def test_csv_probability_with_threshold() -> None:
    records = [rec("0.8", eid="a"), rec("0.3", eid="b"), rec("0.5", eid="c"), rec("0.9", eid="d")]
    r = merge(records, labels(a="1", b="1", c="0"), PredictionSpec(probability_index=0))
    assert r.y_true.tolist() == [1.0, 1.0, 0.0]
    assert r.y_pred.tolist() == [1.0, 0.0, 1.0]  # 0.5 >= threshold 0.5 is positive
    assert r.y_score is not None and r.y_score.tolist() == [0.8, 0.3, 0.5]
    assert r.ids.tolist() == ["a:0", "b:0", "c:0"]
    s = r.stats
    assert (s.records, s.predictions, s.labelled, s.predictions_without_label) == (4, 4, 3, 1)
    assert (s.labels, s.labels_without_prediction, s.duplicate_labels) == (3, 0, 0)
    r = merge(
        records, labels(a="1"), PredictionSpec(probability_index=0, probability_threshold=0.85)
    )
    assert r.y_pred.tolist() == [0.0]


def test_csv_label_and_score_columns_and_text_classes() -> None:
    records = [rec("cat,0.9", eid="a"), rec("dog,0.6", eid="b")]
    r = merge(
        records, labels(a="cat", b="cat"), PredictionSpec(inference_index=0, probability_index=1)
    )
    assert r.y_true.tolist() == ["cat", "cat"] and r.y_pred.tolist() == ["cat", "dog"]
    assert r.y_score is not None and r.y_score.tolist() == [0.9, 0.6]
    # Default: column 0 is the label, no score.
    r = merge(records, labels(a="cat"), PredictionSpec())
    assert r.y_pred.tolist() == ["cat"] and r.y_score is None


def test_csv_batches_label_by_row_key_or_by_one_line() -> None:
    records = [
        rec("0.9\n0.2\n0.7\n", eid="batch1"),  # labelled row by row, one row late/missing
        rec("0.1\n0.8", eid="batch2"),  # labelled by one CSV line
        rec("0.6\n0.4", eid="batch3"),  # labelled as n lines
        rec("0.6\n0.4", eid="batch4"),  # wrong count: no row labelled
        rec("0.3\n0.35", eid="batch5"),  # row key wins over the whole-record label
    ]
    lab = Labels.from_lists(
        ["batch1:0", "batch1:2", "batch2", "batch3", "batch4", "batch5", "batch5:1"],
        ["1", "0", "0,1", "1\n0", "1,0,1", "1,1", "0"],
    )
    r = merge(records, lab, PredictionSpec(probability_index=0))
    assert r.ids.tolist() == ["batch1:0", "batch1:2", "batch2:0", "batch2:1", "batch3:0",
                              "batch3:1", "batch5:0", "batch5:1"]  # fmt: skip
    assert r.y_true.tolist() == [1, 0, 0, 1, 1, 0, 1, 0]
    assert r.y_pred.tolist() == [1, 1, 0, 1, 1, 0, 0, 0]
    s = r.stats
    assert (s.predictions, s.labelled, s.label_row_mismatch) == (11, 8, 2)
    assert s.predictions_without_label == 3
    assert s.labels_without_prediction == 0


def test_quoted_csv_fields() -> None:
    records = [rec('"big, red",0.9', eid="a"), rec('"say ""hi""",0.1', eid="b")]
    r = merge(records, labels(a="big, red", b="x"), PredictionSpec(inference_index=0))
    assert r.y_pred.tolist() == ["big, red", 'say "hi"']
    assert r.y_true.tolist() == ["big, red", "x"]


def test_ragged_csv_falls_back_per_record_and_counts_rows() -> None:
    records = [
        rec("1,0.9", eid="a"),
        rec("0", eid="b"),  # no probability column
        rec("1,0.8,extra", eid="c"),  # wider: the batch parse fails, per record still works
        rec("1,high", eid="d"),  # not a number
        rec("\n", eid="e"),  # no rows at all
        rec(base64.b64encode(b"0,0.1").decode(), eid="f", encoding="BASE64"),
    ]
    r = merge(records, labels(a="1", b="0", c="1", d="1", e="1", f="0"),
              PredictionSpec(inference_index=0, probability_index=1))  # fmt: skip
    assert r.ids.tolist() == ["a:0", "c:0", "f:0"]
    assert r.y_score is not None and r.y_score.tolist() == [0.9, 0.8, 0.1]
    assert r.stats.unparsed_predictions == {"missing_column": 1, "bad_probability": 1, "empty": 1}
    assert r.stats.labels_without_prediction == 0  # e's id is a record of the window


# --- JSON outputs ------------------------------------------------------------------------------


def test_json_label_attribute_single_and_batch() -> None:
    records = [
        rec({"predictions": [{"label": 1, "score": 0.8}]}, eid="a"),
        rec({"predictions": [{"label": 0, "score": 0.4}, {"label": 1, "score": 0.6}]}, eid="b"),
    ]
    spec = PredictionSpec(inference_attribute="predictions[*].label",
                          probability_attribute="predictions[*].score")  # fmt: skip
    r = merge(records, labels(a="1", b="0,0"), spec)
    assert r.ids.tolist() == ["a:0", "b:0", "b:1"]
    assert r.y_true.tolist() == [1, 0, 0] and r.y_pred.tolist() == [1, 0, 1]
    assert r.y_score is not None and r.y_score.tolist() == [0.8, 0.4, 0.6]


def test_json_probability_only_uses_the_threshold() -> None:
    records = [
        rec({"probabilities": [0.3, 0.7]}, eid="a"),
        rec({"probabilities": [0.9, 0.1]}, eid="b"),
    ]
    r = merge(
        records, labels(a="1", b="1"), PredictionSpec(probability_attribute="probabilities[1]")
    )
    assert r.y_pred.tolist() == [1.0, 0.0] and r.y_true.tolist() == [1.0, 1.0]


def test_open_inference_protocol_v2_responses() -> None:
    def v2(*tensors: dict[str, Any]) -> dict[str, Any]:
        return {"model_name": "m", "id": "x", "outputs": list(tensors)}

    records = [
        rec(v2({"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]},
               {"name": "predict_proba", "shape": [1, 2], "datatype": "FP64", "data": [0.25, 0.75]}),
            eid="one"),
        rec(v2({"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.9, 0.1, 0.4, 0.6]},
               {"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [0, 1]}),
            eid="two"),
    ]  # fmt: skip
    spec = PredictionSpec(
        inference_attribute="outputs[?name=='predict'].data",
        probability_attribute="outputs[?name=='predict_proba'].data[*][1]",
    )
    r = merge(records, labels(one="1", two="1,1"), spec)
    assert r.ids.tolist() == ["one:0", "two:0", "two:1"]
    assert r.y_pred.tolist() == [1, 0, 1] and r.y_true.tolist() == [1, 1, 1]
    assert r.y_score is not None and r.y_score.tolist() == [0.75, 0.1, 0.6]
    # The brief's single-row form, and the default path (outputs[0].data).
    single = [rec(v2({"name": "p", "shape": [1], "datatype": "FP32", "data": [0.8]}), eid="s")]
    r = merge(single, labels(s="1"), PredictionSpec(probability_attribute="outputs[0].data[0]"))
    assert r.y_pred.tolist() == [1.0] and r.y_score is not None and r.y_score.tolist() == [0.8]
    r = merge(single, labels(s="0.8"), PredictionSpec())
    assert r.y_pred.tolist() == [0.8] and r.y_true.tolist() == [0.8]


def test_json_default_rows() -> None:
    records = [
        rec({"predictions": ["cat", "dog"]}, eid="a"),
        rec([1, 0], eid="b"),
        rec(1, eid="c"),
        rec({"label": 1}, eid="d"),  # an object row: not a scalar
    ]
    r = merge(records, labels(a="cat,cat", b="1,0", c="1", d="1"), PredictionSpec())
    assert r.y_pred.tolist() == ["cat", "dog", "1", "0", "1"]
    assert r.stats.unparsed_predictions == {"not_scalar": 1}


def test_json_row_failures_are_counted_by_reason() -> None:
    spec = PredictionSpec(inference_attribute="p[*].label", probability_attribute="p[*].score")
    records = [
        rec({"p": [{"label": 1, "score": 0.9}, {"label": None, "score": 0.1}]}, eid="a"),  # null
        rec({"p": [{"label": [1, 2], "score": 0.1}]}, eid="b"),  # not scalar
        rec({"p": [{"label": 1, "score": "x"}]}, eid="c"),  # bad probability
        rec({"p": [{"label": 1}]}, eid="d"),  # probability missing in the row
        rec({"q": 1}, eid="e"),  # attribute absent
        rec("{not json", eid="f", ctype="application/json", encoding="JSON"),
        rec("AAAA", eid="g", ctype="image/png", encoding="BASE64"),
        rec("%%%", eid="h", ctype="text/csv", encoding="BASE64"),
        rec({"p": []}, eid="i"),
    ]
    records.append({"eventMetadata": {"eventId": "j"}, "captureData": {}})
    records.append({"eventMetadata": {}, "captureData": {}})
    r = merge(records, labels(**{"a:0": "1"}), spec)
    assert r.stats.predictions == 1 and r.stats.labelled == 1
    assert r.stats.unparsed_predictions == {
        "null_prediction": 1, "not_scalar": 1, "bad_probability": 1, "missing_probability": 1,
        "probability_not_found": 1, "bad_json": 1, "unsupported_content_type": 1, "bad_encoding": 1,
        "empty": 1, "missing_output": 1, "missing_id": 1,
    }  # fmt: skip
    spec = PredictionSpec(inference_attribute="p[*].label", probability_attribute="s[*]")
    r = merge([rec({"p": [{"label": 1}], "s": [0.1, 0.2]}, eid="k")], labels(), spec)
    assert r.stats.unparsed_predictions == {"row_count_mismatch": 1}
    r = merge([rec({"q": 1}, eid="m")], labels(), PredictionSpec(inference_attribute="p"))
    assert r.stats.unparsed_predictions == {"label_not_found": 1}


# --- ids, late labels, duplicates, types ------------------------------------------------------


def test_inference_id_is_the_key_when_present_else_event_id() -> None:
    records = [rec("1", eid="ev-1", iid="inf-1"), rec("0", eid="ev-2")]
    r = merge(records, labels(**{"inf-1": "1", "ev-2": "0", "ev-1": "0"}), PredictionSpec())
    assert r.ids.tolist() == ["inf-1:0", "ev-2:0"]
    assert r.y_true.tolist() == [1, 0]
    assert r.stats.labels_without_prediction == 1  # ev-1: its record is known by inferenceId


def test_late_and_orphan_labels_and_duplicates() -> None:
    records = [rec("1", eid="a"), rec("0", eid="b"), rec("iVBO", eid="c", ctype="image/png",
                                                        encoding="BASE64")]  # fmt: skip
    lab = Labels.concat([
        labels(a="0", b="0", older="1"),  # "older": a prediction outside this window
        labels(a="1", c="1", **{"b:7": "1"}),  # a corrected; c's prediction is unreadable
    ])  # fmt: skip
    r = merge(records, lab, PredictionSpec())
    s = r.stats
    assert s.duplicate_labels == 1 and s.labels == 5
    assert r.y_true.tolist() == [1, 0]  # last write wins for a
    assert s.labels_without_prediction == 2  # "older" and "b:7" (b has no row 7)
    assert s.unparsed_predictions == {"unsupported_content_type": 1}


def test_duplicate_prediction_ids_both_join() -> None:
    r = merge([rec("1", eid="x"), rec("0", eid="x")], labels(x="1"), PredictionSpec())
    assert r.stats.duplicate_prediction_ids == 1
    assert r.y_true.tolist() == [1, 1] and r.y_pred.tolist() == [1, 0]


def test_outputs_are_numbers_when_all_numeric_else_canonical_text() -> None:
    records = [rec("1.0", eid="a"), rec("0", eid="b"), rec("2", eid="c")]
    r = merge(records, labels(a="1", b="0.0", c="2e0"), PredictionSpec())
    assert r.y_true.dtype == np.float64 and r.y_pred.dtype == np.float64
    assert r.y_true.tolist() == r.y_pred.tolist() == [1.0, 0.0, 2.0]
    r = merge(records, labels(a="1", b="zero", c="2e0"), PredictionSpec())
    assert r.y_true.dtype == object
    assert r.y_true.tolist() == ["1", "zero", "2"] and r.y_pred.tolist() == ["1", "0", "2"]
    # JSON booleans are the binary classes.
    r = merge([rec([True], eid="t")], labels(t="1"), PredictionSpec())
    assert r.y_pred.tolist() == [1.0]


def test_empty_inputs() -> None:
    r = merge([], labels(a="1"), PredictionSpec(probability_index=0))
    assert len(r.y_true) == 0 and r.y_score is not None and len(r.y_score) == 0
    assert r.stats.labels_without_prediction == 1
    r = merge([rec("1", eid="a")], Labels.empty(), PredictionSpec())
    assert (r.stats.predictions, r.stats.labelled, r.stats.predictions_without_label) == (1, 0, 1)


def test_many_rows_join_like_a_dict() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    scores = rng.random(n)
    records = [rec(f"{s:.6f}", eid=f"id{i}") for i, s in enumerate(scores)]
    picked = rng.permutation(n)[: n // 2]
    truth = {f"id{i}": str(int(rng.random() < scores[i])) for i in picked}
    r = merge(records, labels(**truth), PredictionSpec(probability_index=0))
    expected = {f"id{i}:0": float(truth[f"id{i}"]) for i in picked}
    assert dict(zip(r.ids.tolist(), r.y_true.tolist(), strict=True)) == expected
    assert r.stats.labelled == n // 2 and r.stats.predictions_without_label == n - n // 2
    assert r.y_score is not None
    assert np.allclose(r.y_score, [round(scores[int(k[2:-2])], 6) for k in r.ids])
