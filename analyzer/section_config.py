"""What the sections' ``[endpoints.<section>]`` tables share: where the model's prediction is in
endpointOutput (declared once, for model quality and bias; on a batch dataset the endpoint's
prediction_column/probability_column), what a table says of itself (it needs ground truth,
reads captured records only, or stands without a data baseline), and a validation helper."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from analyzer.errors import AnalyzerError
from analyzer.groundtruth import PredictionSpec
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


def checked(what: str, check: typing.Callable[[], object]) -> None:
    """Run a constructor that validates its arguments; its complaint is a ConfigError."""
    try:
        check()
    except ConfigError:
        raise
    except (AnalyzerError, ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: {exc}") from None


def needs_ground_truth(table: object) -> bool:
    """Whether a section's table reads labels from [ground_truth] destination: it says so by a
    ``needs_ground_truth()`` method (model quality without its own ``ground_truth``)."""
    needs = getattr(table, "needs_ground_truth", None)
    return bool(needs()) if callable(needs) else False


def reads_captures(table: object) -> bool:
    """Whether a section reads captured records only, never a batch dataset's rows: its table
    says so by a class attribute ``reads_captures = True`` (the LLM section's exchanges)."""
    return bool(getattr(table, "reads_captures", False))


def stands_alone(table: object) -> bool:
    """Whether an endpoint with this table may go without a data baseline (data quality is then
    not configured): the table says so by a class attribute ``stands_alone = True``."""
    return bool(getattr(table, "stands_alone", False))


@dataclass(frozen=True, kw_only=True)
class PredictionFields:
    """Where a section reads the model's prediction in each captured endpointOutput."""

    inference_index: int | None = setting(None, "CSV output: the label's column.")
    probability_index: int | None = setting(None, "CSV output: the probability's column.")
    inference_attribute: str | None = setting(
        None, "JSON output: path of the label, e.g. predictions[*]."
    )
    probability_attribute: str | None = setting(None, "JSON output: path of the probability.")
    probability_threshold: float = setting(
        0.5, "Binary: probability at or above which the label is positive."
    )

    def spec(self) -> PredictionSpec:
        return PredictionSpec(
            inference_index=self.inference_index,
            probability_index=self.probability_index,
            inference_attribute=self.inference_attribute,
            probability_attribute=self.probability_attribute,
            probability_threshold=self.probability_threshold,
        )
