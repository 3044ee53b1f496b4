"""Model quality as a section: predictions of the (label-delayed) window joined with their ground
truth (``analyzer.quality.run``), model_quality.json and SageMaker's model-quality files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from analyzer.quality.exported import quality_metrics
from analyzer.quality.run import run_quality
from analyzer.report_html import doc_section
from analyzer.section import Ident, Limits, Outcome, SectionInput
from analyzer.targets import Target

Doc = dict[str, Any]


def quality_problem(doc: Mapping[str, Any]) -> str:
    """What went wrong in a model-quality document ('' when nothing did): ground-truth labels of
    the wrong type (left out of the metrics), or metrics that could not be computed."""
    problems = []
    bad = doc.get("invalid_labels") or {}
    if bad.get("count"):
        shown = ", ".join(repr(e) for e in bad.get("examples", []))
        problems.append(
            f"{bad['count']} of {bad['of']} ground-truth labels are not {bad['expected']} "
            f"(e.g. {shown}); they are left out of the metrics"
        )
    if doc.get("error"):
        problems.append(f"metrics not computed: {doc['error']}")
    return "; ".join(problems)


class QualitySection:
    name = "quality"
    title = "Model quality"

    def configured(self, target: Target) -> bool:
        return target.quality is not None and target.batch is None

    async def run(self, source: SectionInput) -> Doc | None:
        t = source.target
        if t.quality is None or source.labels is None:
            return None
        return await run_quality(
            source.captures, source.labels, t.endpoint, t.variant, t.target_model, t.quality,
            source.window,
        )  # fmt: skip

    def failed(self, error: str) -> Doc:
        return {"error": error, "violations": []}

    def outcome(self, result: Doc) -> Outcome:
        return Outcome(
            violations=len(result.get("violations") or []),
            problem=quality_problem(result),
            has_data=result.get("statistics") is not None,
        )

    def violations(self, result: Doc) -> Sequence[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = result.get("violations") or []
        return found

    def report_files(self, result: Doc) -> list[tuple[str, object]]:
        files: list[tuple[str, object]] = [("model_quality.json", result)]
        if result.get("statistics") is not None:  # SageMaker's model-quality job outputs
            files.append(("model-quality/statistics.json", result["statistics"]))
        found = {"violations": result.get("violations", [])}
        files.append(("model-quality/constraint_violations.json", found))
        return files

    def html(self, result: Doc) -> str:
        return doc_section(result, self.name, self.title)

    def metrics(self, results: Mapping[Ident, Doc], limits: Limits) -> Iterable[Metric]:
        return quality_metrics(results, limits.max_classes)


QUALITY = QualitySection()
