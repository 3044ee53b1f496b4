"""A toy monitoring section, the whole of it in one module: it counts the window's capture
objects and reports a violation when there are more than its limit (``[endpoints.toy]`` limit,
default ``LIMIT``). Registered by test_toy_section.py with one line, it must show up in
monitor.toml's configuration, run.json, the reports and /metrics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from analyzer.report_html import Fragment, doc_section
from analyzer.section import Ident, Limits, LoadInput, Outcome, PageContext, SectionInput
from analyzer.targets import Target
from analyzer.window import list_window
from modeltap.core.settings import setting

LIMIT = 2


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    """``[endpoints.toy]``: the toy section's settings."""

    limit: int = setting(LIMIT, "More capture objects than this in a window is a violation.", min=0)


@dataclass(frozen=True)
class ToyResult:
    objects: int
    violations: tuple[dict[str, str], ...] = ()
    error: str = ""


class ToySection:
    name = "toy"
    title = "Toy objects"
    config_type = ToyConfig
    baseline = None  # it compares with no baseline

    async def load(self, config: ToyConfig, source: LoadInput) -> ToyConfig:
        return config

    def labels(self, target: Target) -> str:
        return ""

    def configured(self, target: Target) -> bool:
        return target.batch is None

    async def run(self, source: SectionInput) -> ToyResult | None:
        t = source.target
        config = t.sections.get(self.name)
        limit = config.limit if isinstance(config, ToyConfig) else LIMIT
        found = await list_window(source.captures, t.endpoint, t.variant, source.window)
        too_many = len(found) > limit
        violation = {"metric_name": "objects", "description": f"{len(found)} > {limit} objects"}
        return ToyResult(len(found), (violation,) if too_many else ())

    def failed(self, error: str) -> ToyResult:
        return ToyResult(0, error=error)

    def outcome(self, result: ToyResult) -> Outcome:
        return Outcome(violations=len(result.violations), problem=result.error)

    def violations(self, result: ToyResult) -> Sequence[Mapping[str, Any]]:
        return result.violations

    def report_files(self, result: ToyResult) -> list[tuple[str, object]]:
        return [("toy/result.json", asdict(result))]

    def html(self, result: ToyResult, page: PageContext) -> Fragment:
        return Fragment(doc_section({"objects": result.objects}, self.name, self.title))

    def metrics(self, results: Mapping[Ident, ToyResult], limits: Limits) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "modeltap_analyzer_toy_objects",
            "Capture objects of the latest window (the toy section).",
            labels=["endpoint", "variant", "model"],
        )
        for ident, result in sorted(results.items()):
            gauge.add_metric(list(ident), float(result.objects))
        yield gauge


TOY = ToySection()
