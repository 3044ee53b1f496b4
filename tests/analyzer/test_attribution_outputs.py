"""Several model outputs: their selection, names, and the label bound of their metrics."""

from __future__ import annotations

import pytest

from analyzer.attribution import AttributionError
from analyzer.attribution.exported import attribution_metrics
from analyzer.attribution.outputs import (
    baseline_labels,
    check_same_outputs,
    client_config,
    output_names,
)
from analyzer.attribution.run import AttributionResult


def test_selection_and_names() -> None:
    assert client_config("http://m", score_index=1).score_index == 1
    picked = client_config("http://m", score_index=1, outputs=(2, 0))
    assert (picked.score_index, picked.outputs) == (None, (2, 0))
    every = client_config("http://m", all_outputs=True)
    assert (every.score_index, every.outputs) == (None, None)
    with pytest.raises(AttributionError, match="outputs or all_outputs"):
        client_config("http://m", outputs=(1,), all_outputs=True)
    assert output_names(3) == ["label0", "label1", "label2"]
    assert output_names(2, ("cat", "dog")) == ["cat", "dog"]
    assert output_names(2, (), ("cat", "dog")) == ["cat", "dog"]  # the baseline's names
    assert output_names(1, (), ("cat", "dog")) == ["label0"]
    with pytest.raises(AttributionError, match="3 output"):
        output_names(3, ("cat", "dog"))
    doc = {"explanations": {"kernel_shap": {"cat": {}, "dog": {}}}}
    assert baseline_labels(doc) == ["cat", "dog"]
    check_same_outputs(["cat", "dog"], ["dog", "cat"])
    with pytest.raises(AttributionError, match="the window explains outputs"):
        check_same_outputs(["cat", "dog"], ["label0"])


def test_metrics_bound_the_output_labels() -> None:
    labels = [f"label{i}" for i in range(30)]
    report = {"explanations": {"kernel_shap": {
        name: {"global_shap_values": {"a": 0.5, "b": 0.1}, "expected_value": 0.0}
        for name in labels}}}  # fmt: skip
    result = AttributionResult(
        rows_explained=5,
        report=report,
        ndcg={name: 0.5 for name in labels},
        violations=[{"label": name, "metric_name": "shap"} for name in labels],
    )
    ndcg, values, violations = attribution_metrics({("e", "v", ""): result}, 200, max_labels=20)
    assert [s.labels["label"] for s in ndcg.samples] == sorted(labels[:20])
    assert {s.labels["label"] for s in values.samples} == set(labels[:20])
    assert len(values.samples) == 40 and len(violations.samples) == 20
