"""Bias drift as a section: Clarify's post-training metrics of the window's predictions across
a facet (``analyzer.bias.run``), written under ``bias/``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from analyzer.bias.baseline_builder import BIAS_BASELINE
from analyzer.bias.config import BiasConfig, load_bias
from analyzer.bias.exported import bias_metrics
from analyzer.bias.run import BiasResult, BiasTarget, run_bias, run_bias_dataset
from analyzer.report_html import Fragment, doc_section
from analyzer.section import Ident, Limits, LoadInput, Outcome, PageContext, SectionInput
from analyzer.targets import Target


def clarify_files(folder: str, doc: dict[str, Any]) -> list[tuple[str, object]]:
    """analysis.json (the window's report), constraint_violations.json and the rest as run.json,
    the files of a Clarify-style section (bias, attribution)."""
    files: list[tuple[str, object]] = []
    if doc.get("report") is not None:
        files.append((f"{folder}/analysis.json", doc["report"]))
    found = {"version": "1.0", "violations": doc.get("violations", [])}
    files.append((f"{folder}/constraint_violations.json", found))
    files.append((f"{folder}/run.json", {k: v for k, v in doc.items() if k != "report"}))
    return files


class BiasSection:
    name = "bias"
    title = "Bias drift"
    config_type = BiasConfig
    baseline = BIAS_BASELINE

    async def load(self, config: BiasConfig, source: LoadInput) -> BiasTarget:
        return await load_bias(config, source)

    def labels(self, target: Target) -> str:
        config = self.config(target)
        return config.ground_truth if config is not None else ""

    def config(self, target: Target) -> BiasTarget | None:
        """The target's bias settings and baseline, when it has them."""
        found = target.sections.get(self.name)
        return found if isinstance(found, BiasTarget) else None

    def configured(self, target: Target) -> bool:
        return self.config(target) is not None

    async def run(self, source: SectionInput) -> BiasResult | None:
        t = source.target
        config = self.config(t)
        if config is None or not source.window_has_data:
            return None
        if t.batch is not None:
            return await run_bias_dataset(
                source.captures, source.labels, t.endpoint, t.variant, t.batch, config,
                source.window,
            )  # fmt: skip
        return await run_bias(
            source.captures, source.labels, t.endpoint, t.variant, t.target_model, config,
            source.window,
        )  # fmt: skip

    def failed(self, error: str) -> BiasResult:
        return BiasResult(error=error)

    def outcome(self, result: BiasResult) -> Outcome:
        problem = result.error or result.invalid_labels.problem()
        return Outcome(violations=len(result.violations), problem=problem)

    def violations(self, result: BiasResult) -> Sequence[Mapping[str, Any]]:
        return result.violations

    def report_files(self, result: BiasResult) -> list[tuple[str, object]]:
        return clarify_files(self.name, result.document())

    def html(self, result: BiasResult, page: PageContext) -> Fragment:
        return Fragment(doc_section(result.document(), self.name, self.title))

    def metrics(self, results: Mapping[Ident, BiasResult], limits: Limits) -> Iterable[Metric]:
        return bias_metrics(results)


BIAS = BiasSection()
