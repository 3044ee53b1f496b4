"""The variant comparison as a comparison stage (``analyzer.comparison``): variants.json, the
"Variants compared" part of report.html, the reference's window drawn beside each feature, and
the variant_drift metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from analyzer.data_quality.exported import LABELS, drift_metrics
from analyzer.html_format import e
from analyzer.report_html import Fragment
from analyzer.results import RunResult
from analyzer.section import Beside, Ident, Limits
from analyzer.targets import Target
from analyzer.variants.compare import VariantComparison, compare_variants


def variant_metrics(
    results: Mapping[Ident, VariantComparison], limits: Limits
) -> Iterator[GaugeMetricFamily]:
    drift = GaugeMetricFamily("modeltap_analyzer_variant_drift",
                              "A drift measure of a feature, this variant's latest window against the "
                              "reference variant's (A/B).",
                              labels=[*LABELS, "reference_variant", "feature", "statistic"])  # fmt: skip
    detected = GaugeMetricFamily("modeltap_analyzer_variant_drift_detected",
                                 "1 when the corrected test found that a feature differs between this "
                                 "variant and the reference variant.",
                                 labels=[*LABELS, "reference_variant", "feature"])  # fmt: skip
    for ident, found in sorted(results.items()):
        labels = [*ident, found.reference_variant]
        drift_metrics(found.evaluation, labels, drift, detected, limits.max_features)
    yield from (drift, detected)


class VariantsStage:
    name = "variants"

    async def compare(
        self, runs: Sequence[tuple[Target, RunResult]]
    ) -> list[VariantComparison | None]:
        return await compare_variants(runs)

    def report_files(self, result: VariantComparison) -> list[tuple[str, object]]:
        return [("variants.json", result.document())]

    def beside(self, result: VariantComparison) -> Mapping[str, Beside]:
        if result.evaluation is None or result.reference_window is None:
            return {}
        return {result.reference_variant: Beside(result.reference_window, result.evaluation)}

    def html(self, result: VariantComparison) -> Fragment | None:
        rows = [
            f"<tr><td>{e(variant)}</td><td class=n>"
            f"{sum(1 for f in other.evaluation.features.values() if f.drift)}</td></tr>"
            for variant, other in self.beside(result).items()
        ]
        if not rows:
            return None
        return Fragment(
            '<section id="comparisons"><h2>Variants compared</h2><table class="tbl">'
            f"<tr><th>Variant</th><th>Features that differ</th></tr>{''.join(rows)}</table></section>"
        )

    def metrics(
        self, results: Mapping[Ident, VariantComparison], limits: Limits
    ) -> Iterable[Metric]:
        return variant_metrics(results, limits)


VARIANTS = VariantsStage()
