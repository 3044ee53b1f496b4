"""Model quality as a section: predictions of the (label-delayed) window joined with their ground
truth (``analyzer.quality.run``), model_quality.json and SageMaker's model-quality files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from analyzer.quality.baseline_builder import QUALITY_BASELINE
from analyzer.quality.config import QualityConfig, load_quality
from analyzer.quality.exported import quality_metrics
from analyzer.quality.run import QualityResult, QualityTarget, run_quality, run_quality_dataset
from analyzer.report_html import Fragment, doc_section
from analyzer.section import Ident, Limits, LoadInput, Outcome, PageContext, SectionInput
from analyzer.targets import Target


def quality_problem(result: QualityResult) -> str:
    """What went wrong in a model-quality run ('' when nothing did): ground-truth labels of the
    wrong type (left out of the metrics), or metrics that could not be computed."""
    if result.raised:
        return result.error
    problems = [p] if (p := result.invalid_labels.problem()) else []
    if result.error:
        problems.append(f"metrics not computed: {result.error}")
    return "; ".join(problems)


class QualitySection:
    name = "quality"
    title = "Model quality"
    config_type = QualityConfig
    baseline = QUALITY_BASELINE

    async def load(self, config: QualityConfig, source: LoadInput) -> QualityTarget:
        return await load_quality(config, source)

    def labels(self, target: Target) -> str:
        config = self.config(target)
        return config.ground_truth if config is not None else ""

    def config(self, target: Target) -> QualityTarget | None:
        """The target's quality settings and baseline, when it has them."""
        found = target.sections.get(self.name)
        return found if isinstance(found, QualityTarget) else None

    def configured(self, target: Target) -> bool:
        return self.config(target) is not None

    async def run(self, source: SectionInput) -> QualityResult | None:
        t = source.target
        config = self.config(t)
        if config is None:
            return None
        if t.batch is not None:  # the dataset's rows: label column, or ground truth by id
            if not t.batch.label_column and source.labels is None:
                return None
            return await run_quality_dataset(
                source.captures, source.labels, t.endpoint, t.variant, t.batch, config,
                source.window,
            )  # fmt: skip
        if source.labels is None:
            return None
        return await run_quality(
            source.captures, source.labels, t.endpoint, t.variant, t.target_model, config,
            source.window,
        )  # fmt: skip

    def failed(self, error: str) -> QualityResult:
        return QualityResult(error=error, raised=True)

    def outcome(self, result: QualityResult) -> Outcome:
        return Outcome(
            violations=len(result.violations),
            problem=quality_problem(result),
            has_data=result.statistics is not None,
        )

    def violations(self, result: QualityResult) -> Sequence[Mapping[str, Any]]:
        return result.violations

    def report_files(self, result: QualityResult) -> list[tuple[str, object]]:
        files: list[tuple[str, object]] = [("model_quality.json", result.document())]
        if result.statistics is not None:  # SageMaker's model-quality job outputs
            files.append(("model-quality/statistics.json", result.statistics))
        found = {"violations": result.violations}
        files.append(("model-quality/constraint_violations.json", found))
        return files

    def html(self, result: QualityResult, page: PageContext) -> Fragment:
        return Fragment(doc_section(result.document(), self.name, self.title))

    def metrics(self, results: Mapping[Ident, QualityResult], limits: Limits) -> Iterable[Metric]:
        return quality_metrics(results, limits.max_classes)


QUALITY = QualitySection()
