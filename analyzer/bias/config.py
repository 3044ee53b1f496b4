"""``[endpoints.bias]``: bias drift's settings, and what its runs read of them (``load``: the
bias baseline read, the facet's columns checked against the endpoint's)."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.baseline_files import read_json_files
from analyzer.bias.metrics import Facet
from analyzer.bias.run import BiasTarget
from analyzer.section import LoadInput
from analyzer.section_config import PredictionFields, checked
from modeltap.core.errors import ConfigError
from modeltap.core.settings import REQUIRED, setting
from modeltap.core.store import split_destination


@dataclass(frozen=True, kw_only=True)
class BiasConfig(PredictionFields):
    """``[endpoints.bias]``: bias drift across a sensitive attribute (an input column)."""

    baseline: str = setting(
        REQUIRED, "`modeltap baseline --bias-facet ...` output (analysis.json + constraints.json)."
    )
    facet: str = setting(REQUIRED, "The input column of the sensitive attribute.")
    facet_threshold: float | None = setting(
        None, "The disadvantaged group: the rows whose facet is above this ..."
    )
    facet_values: tuple[str | int | float, ...] = setting(
        (), "... or holding these categories (neither: each value in turn)."
    )
    group: str = setting("", "An input column for CDDPL (conditional demographic disparity).")
    positive_label: str = setting("1", "The positive label.")
    bootstrap: int = setting(200, "Resamples for the window's confidence interval.", min=0)

    def facet_spec(self) -> Facet:
        values = tuple(str(v) for v in self.facet_values) or None
        return Facet(self.facet, values=values, threshold=self.facet_threshold)

    def validate(self) -> None:
        checked("prediction", self.spec)
        checked("facet", self.facet_spec)
        split_destination(self.baseline)


async def load_bias(b: BiasConfig, source: LoadInput) -> BiasTarget:
    analysis, constraints = await read_json_files(
        b.baseline, ("analysis.json", "constraints.json"), source.store
    )
    missing = [c for c in (b.facet, b.group) if c and c not in source.columns]
    if missing:
        raise ConfigError(
            f"[endpoints.bias] column(s) {', '.join(missing)} are not among the endpoint's "
            f"input columns ({', '.join(source.columns)})"
        )
    return BiasTarget(
        (b.facet_spec(),),
        analysis,
        constraints,
        b.spec(),
        source.columns,
        positive_values=(b.positive_label,),
        group=b.group or None,
        bootstrap=b.bootstrap,
        ground_truth=source.ground_truth,
    )
