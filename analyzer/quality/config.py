"""``[endpoints.quality]``: model quality's settings, and what its runs read of them
(``load``: the model-quality baseline read, the ground truth's prefix resolved)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analyzer.baseline_files import read_json_files
from analyzer.quality.estimate import Calibration
from analyzer.quality.labels import ProblemType
from analyzer.quality.run import QualityTarget
from analyzer.section import LoadInput
from analyzer.section_config import PredictionFields, checked
from modeltap.core.settings import REQUIRED, setting
from modeltap.core.store import split_destination


@dataclass(frozen=True, kw_only=True)
class QualityConfig(PredictionFields):
    """``[endpoints.quality]``: model-quality monitoring of one endpoint/variant."""

    problem_type: str = setting(
        REQUIRED, "Regression, BinaryClassification or MulticlassClassification."
    )
    baseline: str = setting(
        REQUIRED,
        "`modeltap baseline --problem-type` output (statistics.json + constraints.json).",
    )
    ground_truth: str = setting(
        "", "The labels' prefix (s3:// or file://); default: [ground_truth] destination."
    )
    positive_label: str | None = setting(
        None, "Binary: the positive label (default: the baseline's)."
    )
    label_delay_hours: float = setting(
        0.0, "Realised metrics cover the window shifted back this much.", min=0
    )

    def needs_ground_truth(self) -> bool:
        """Labels from [ground_truth] destination (``section_config.needs_ground_truth``)."""
        return not self.ground_truth

    def validate(self) -> None:
        checked("problem_type", lambda: ProblemType.parse(self.problem_type))
        checked("prediction", self.spec)
        split_destination(self.baseline)
        if self.ground_truth:
            split_destination(self.ground_truth)


async def load_quality(q: QualityConfig, source: LoadInput) -> QualityTarget:
    ground_truth = q.ground_truth or source.ground_truth  # one of them: MonitorConfig.validate
    stats, constraints = await read_json_files(
        q.baseline, ("statistics.json", "constraints.json"), source.store
    )
    calibration = None
    if (stats.get("modeltap") or {}).get("calibration") is not None:
        calibration = Calibration.from_statistics(stats)
    return QualityTarget(
        ProblemType.parse(q.problem_type),
        stats,
        constraints,
        q.spec(),
        ground_truth=ground_truth,
        label_delay=dt.timedelta(hours=q.label_delay_hours),
        positive_label=q.positive_label
        if q.positive_label is not None
        else (stats.get("modeltap") or {}).get("positive_label"),
        calibration=calibration,
    )
