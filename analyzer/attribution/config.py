"""``[endpoints.attribution]``: feature-attribution drift's settings, and what its runs read of
them (``load``: the attribution baseline and its background rows read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analyzer.attribution.client import ModelClientConfig
from analyzer.attribution.kernel_shap import Background
from analyzer.attribution.outputs import client_config
from analyzer.attribution.run import AttributionTarget
from analyzer.baseline_files import read_json_files
from analyzer.errors import BaselineFormatError
from analyzer.section import LoadInput
from analyzer.section_config import checked
from modeltap.core.settings import REQUIRED, setting
from modeltap.core.store import split_destination


@dataclass(frozen=True, kw_only=True)
class AttributionConfig:
    """``[endpoints.attribution]``: feature-attribution drift by Kernel SHAP against the model."""

    baseline: str = setting(
        REQUIRED, "`modeltap baseline --attribution ...` output (analysis.json + background.json)."
    )
    model_url: str = setting(
        REQUIRED, "Where to score synthetic rows: a shadow model, never the live sidecar."
    )
    content_type: Literal["text/csv", "application/json"] = setting(
        "text/csv", 'Request body: CSV rows, or JSON {"instances": [...]}.'
    )
    score_index: int | None = setting(0, "CSV responses: the score's column.")
    score_path: str | None = setting(None, "JSON responses: the path of each row's score.")
    outputs: tuple[int, ...] = setting(
        (), "Several outputs: these CSV columns / positions in each row's scores list."
    )
    all_outputs: bool = setting(False, "... or every output of each row, each explained.")
    output_labels: tuple[str, ...] = setting(
        (), "Names of the explained outputs (default: the baseline's, label0, label1, ...)."
    )
    rows: int = setting(50, "Window rows explained per run.", min=1)
    nsamples: int | None = setting(None, "Coalitions per row (default: the baseline's).")
    threshold: float = setting(
        0.9, "NDCG below this is a violation.", min=0, min_exclusive=True, max=1
    )
    rows_per_request: int = setting(500, "Rows scored per request to the model.", min=1)
    max_concurrency: int = setting(2, "Requests to the model at once.", min=1)
    requests_per_second: float = setting(
        10.0, "Requests to the model per second at most.", min=0, min_exclusive=True
    )

    def client(self) -> ModelClientConfig:
        return client_config(
            self.model_url,
            content_type=self.content_type,
            score_index=self.score_index,
            score_path=self.score_path,
            outputs=self.outputs,
            all_outputs=self.all_outputs,
            rows_per_request=self.rows_per_request,
            max_concurrency=self.max_concurrency,
            requests_per_second=self.requests_per_second,
        )

    def validate(self) -> None:
        checked("model client", self.client)
        split_destination(self.baseline)


async def load_attribution(a: AttributionConfig, source: LoadInput) -> AttributionTarget:
    analysis, background = await read_json_files(
        a.baseline, ("analysis.json", "background.json"), source.store
    )
    try:
        features = tuple(str(f) for f in background["features"])
        rows = Background.of(background["rows"], background["weights"])
        nsamples = a.nsamples if a.nsamples is not None else background.get("nsamples")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaselineFormatError(
            f"{a.baseline.rstrip('/')}/background.json does not follow the format "
            f"(features, rows, weights): {type(exc).__name__}: {exc}"
        ) from None
    return AttributionTarget(
        analysis, features, rows, a.client(), rows=a.rows, nsamples=nsamples,
        threshold=a.threshold, labels=a.output_labels,
    )  # fmt: skip
