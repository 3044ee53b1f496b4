"""Feature-attribution drift as a section: Kernel SHAP of window rows against the model and the
NDCG of the ranking against the baseline's (``analyzer.attribution.run``), under ``attribution/``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from analyzer.attribution.baseline_builder import ATTRIBUTION_BASELINE
from analyzer.attribution.config import AttributionConfig, load_attribution
from analyzer.attribution.exported import attribution_metrics
from analyzer.attribution.run import AttributionResult, AttributionTarget, run_attribution
from analyzer.bias.section import clarify_files
from analyzer.report_html import Fragment, doc_section
from analyzer.section import Ident, Limits, LoadInput, Outcome, PageContext, SectionInput
from analyzer.targets import Target


class AttributionSection:
    name = "attribution"
    title = "Feature attribution drift"
    config_type = AttributionConfig
    baseline = ATTRIBUTION_BASELINE

    async def load(self, config: AttributionConfig, source: LoadInput) -> AttributionTarget:
        return await load_attribution(config, source)

    def labels(self, target: Target) -> str:
        return ""

    def config(self, target: Target) -> AttributionTarget | None:
        """The target's attribution settings and baseline, when it has them."""
        found = target.sections.get(self.name)
        return found if isinstance(found, AttributionTarget) else None

    def configured(self, target: Target) -> bool:
        return self.config(target) is not None

    async def run(self, source: SectionInput) -> AttributionResult | None:
        t = source.target
        config = self.config(t)
        if config is None or not source.window_has_data:
            return None
        return await run_attribution(
            source.captures, t.endpoint, t.variant, t.target_model, config, source.window, t.batch
        )

    def failed(self, error: str) -> AttributionResult:
        return AttributionResult(error=error)

    def outcome(self, result: AttributionResult) -> Outcome:
        return Outcome(violations=len(result.violations))

    def violations(self, result: AttributionResult) -> Sequence[Mapping[str, Any]]:
        return result.violations

    def report_files(self, result: AttributionResult) -> list[tuple[str, object]]:
        return clarify_files(self.name, result.document())

    def html(self, result: AttributionResult, page: PageContext) -> Fragment:
        return Fragment(doc_section(result.document(), self.name, self.title))

    def metrics(
        self, results: Mapping[Ident, AttributionResult], limits: Limits
    ) -> Iterable[Metric]:
        return attribution_metrics(results, limits.max_features, limits.max_classes)


ATTRIBUTION = AttributionSection()
