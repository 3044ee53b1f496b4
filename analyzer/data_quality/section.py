"""Data quality and drift as a section: the window's profile (the profile stage's) checked
against the target's baseline and constraints.json (``analyzer.checks``).

Its files are SageMaker's: statistics.json (the window's profile) and constraint_violations.json,
plus drift.json (every feature's measures and decision); its part of report.html is the
per-feature charts (``features``); its metrics the violation, feature-statistic and drift
families (``exported``). It is configured for every target that has a data baseline, batch
datasets too (an endpoint with only ``[endpoints.llm]`` has none); its baseline is the endpoint's
own (``modeltap baseline`` without a section flag), read by ``target_loading``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from analyzer.batch_rows import role_columns
from analyzer.data_quality.baseline import DATA_BASELINE
from analyzer.data_quality.exported import data_metrics
from analyzer.data_quality.features import data_fragment
from analyzer.data_quality.result import DataResult
from analyzer.report_html import Fragment
from analyzer.section import Ident, Limits, LoadInput, Outcome, PageContext, SectionInput
from analyzer.statistics import profile_to_statistics
from analyzer.targets import Target

log = logging.getLogger(__name__)


class DataSection:
    name = "data"
    title = "Data quality"
    config_type = None  # its settings are the [[endpoints]] table's own (baseline, columns)
    baseline = DATA_BASELINE

    async def load(self, config: Any, source: LoadInput) -> object:
        return None

    def labels(self, target: Target) -> str:
        return ""

    def configured(self, target: Target) -> bool:
        # every target with a data baseline, batch datasets too; an endpoint of a section that
        # stands alone (``[endpoints.llm]``) may have none: no tabular profile, no checks
        return bool(target.baseline.columns)

    async def run(self, source: SectionInput) -> DataResult:
        window = source.profile
        if window is None or window.item_count == 0:
            return DataResult()
        statistics = await asyncio.to_thread(profile_to_statistics, window)
        if source.checks is None:
            return DataResult(window, statistics)
        t = source.target
        observed = source.observed
        if t.batch is not None:  # its label, prediction, ... columns are not extra inputs
            observed = observed - (set(role_columns(t.batch)) - set(t.baseline.columns))
        try:
            evaluation = await asyncio.to_thread(
                source.checks, t.baseline, t.constraints, window, observed
            )
        except Exception as exc:  # the run fails; statistics.json is still written
            log.exception("data-quality checks of %s/%s failed", t.endpoint, t.variant)
            return DataResult(window, statistics, error=f"{type(exc).__name__}: {exc}")
        return DataResult(window, statistics, evaluation)

    def failed(self, error: str) -> DataResult:
        return DataResult(error=error)

    def outcome(self, result: DataResult) -> Outcome:
        return Outcome(violations=len(result.violations), problem=result.error)

    def violations(self, result: DataResult) -> Sequence[Mapping[str, Any]]:
        return [v.to_dict() for v in result.violations]

    def report_files(self, result: DataResult) -> list[tuple[str, object]]:
        files: list[tuple[str, object]] = []
        if result.statistics is not None:
            files.append(("statistics.json", result.statistics))
        files.append(("constraint_violations.json", {"violations": self.violations(result)}))
        if result.evaluation is not None:
            files.append(("drift.json", result.evaluation.to_dict()))
        return files

    def html(self, result: DataResult, page: PageContext) -> Fragment:
        return data_fragment(result, page)

    def metrics(self, results: Mapping[Ident, DataResult], limits: Limits) -> Iterable[Metric]:
        return data_metrics(results, limits)


DATA = DataSection()
