"""Which of a model's outputs attribution explains, and what each is called.

A multiclass model answers one probability per class and a multi-target regression one value per
target; SageMaker Clarify explains each and names them ``label0``, ``label1``, ... (or by its
``label_headers``). The same settings serve the baseline (``modeltap baseline --attribution``)
and the monitor (``[endpoints.attribution]``):

* ``score_index`` (CSV) / ``score_path`` (JSON): one output, as before;
* ``outputs = [0, 2]``: these outputs of each row, in this order (CSV columns, or positions in
  each row's list under ``score_path``);
* ``all_outputs = true``: every output of each row (every CSV column, the whole list);
* ``output_labels = ["setosa", ...]``: their names (default ``label0``, ``label1``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.attribution.client import ContentType, ModelClientConfig
from analyzer.attribution.errors import AttributionError
from analyzer.attribution.ndcg import METHOD


def client_config(
    url: str,
    *,
    content_type: ContentType = "text/csv",
    score_index: int | None = 0,
    score_path: str | None = None,
    outputs: Sequence[int] = (),
    all_outputs: bool = False,
    **limits: Any,
) -> ModelClientConfig:
    """The model client of the settings above (``limits``: its request bounds)."""
    if outputs and all_outputs:
        raise AttributionError("give outputs or all_outputs, not both")
    return ModelClientConfig(
        url,
        content_type=content_type,
        score_index=None if score_path or all_outputs or outputs else score_index,
        score_path=score_path,
        outputs=tuple(outputs) or None,
        **limits,
    )


def output_names(k: int, configured: Sequence[str] = (), known: Sequence[str] = ()) -> list[str]:
    """Names of ``k`` explained outputs: the configured ones, else ``known`` (the baseline's,
    when it explained as many), else ``label0`` ... ``label{k-1}``."""
    if configured:
        if len(configured) != k:
            raise AttributionError(
                f"the model gave {k} output(s) per row but output_labels names "
                f"{len(configured)}: {list(configured)}"
            )
        return list(configured)
    if len(known) == k:
        return list(known)
    return [f"label{i}" for i in range(k)]


def baseline_labels(baseline: Mapping[str, Any]) -> list[str]:
    """The output labels of an attributions report, in its order."""
    section = (baseline.get("explanations") or {}).get(METHOD)
    return [str(k) for k in section] if isinstance(section, Mapping) else []


def check_same_outputs(baseline: Sequence[str], window: Sequence[str]) -> None:
    """A window that explains other outputs than the baseline has nothing to compare with."""
    if sorted(baseline) != sorted(window):
        raise AttributionError(
            f"the window explains outputs {list(window)} but the baseline has {list(baseline)}: "
            "select the same outputs (outputs, all_outputs, output_labels) as for the baseline"
        )
