"""LLM monitoring as a section: the window's exchanges described and checked against the LLM
baseline (``analyzer.llm.run``), written under ``llm/``."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from analyzer.llm.baseline_builder import LLM_BASELINE
from analyzer.llm.config import LLMConfig, load_llm
from analyzer.llm.exported import llm_metrics
from analyzer.llm.run import LLMResult, LLMTarget, run_llm
from analyzer.report_html import Fragment
from analyzer.section import Ident, Limits, LoadInput, Outcome, PageContext, SectionInput
from analyzer.targets import Target


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _n(v: Any) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.4g}"
    return "" if v is None else _e(v)


def llm_html(result: LLMResult, title: str) -> str:
    """The section of report.html: what was read, the violations, one row per descriptor."""
    parts = [f'<section id="llm"><h2>{_e(title)}</h2>']
    if result.error:
        parts.append(f"<p>Failed: {_e(result.error)}</p></section>")
        return "".join(parts)
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(result.unreadable.items())) or "none"
    parts.append(f"<p>{result.exchanges:,} exchanges read; records skipped: {_e(skipped)}.</p>")
    if result.violations:
        listed = "".join(
            f"<tr><td>{_e(v['feature_name'])}</td><td>{_e(v['constraint_check_type'])}</td>"
            f"<td>{_e(v['description'])}</td></tr>"
            for v in result.violations
        )
        parts.append(
            f'<h3>Violations ({len(result.violations)})</h3><table class="tbl"><tr>'
            f"<th>Descriptor</th><th>Check</th><th>Description</th></tr>{listed}</table>"
        )
    features = (result.evaluation or {}).get("features") or {}
    if features:
        rows = []
        for name, f in features.items():
            m = f.get("measures") or {}
            d = f.get("decision") or {}
            drift = '<span class="b drift">drift</span>' if d.get("drift") else ""
            rows.append(
                f"<tr><td>{_e(name)} {drift}</td><td class=n>{_n(result.baseline_means.get(name))}"
                f"</td><td class=n>{_n(result.means.get(name))}</td><td class=n>"
                f"{_n(m.get('distance'))}</td><td class=n>{_n(m.get('pvalue'))}</td></tr>"
            )
        parts.append(
            '<h3>Descriptors</h3><table class="tbl"><tr><th>Descriptor</th><th>Baseline mean</th>'
            "<th>Window mean</th><th>Distance</th><th>p-value</th></tr>"
            f"{''.join(rows)}</table>"
        )
    for name, by_value in result.shares.items():
        top = sorted(by_value.items(), key=lambda kv: -kv[1])[:10]
        cells = ", ".join(f"{_e(v)} {share:.1%}" for v, share in top)
        parts.append(f'<p class="note">{_e(name)}: {cells}</p>')
    parts.append("</section>")
    return "".join(parts)


class LLMSection:
    name = "llm"
    title = "LLM prompts and answers"
    config_type = LLMConfig
    baseline = LLM_BASELINE

    async def load(self, config: LLMConfig, source: LoadInput) -> LLMTarget:
        return await load_llm(config, source)

    def labels(self, target: Target) -> str:
        return ""

    def config(self, target: Target) -> LLMTarget | None:
        found = target.sections.get(self.name)
        return found if isinstance(found, LLMTarget) else None

    def configured(self, target: Target) -> bool:
        # its exchanges are captured records: a batch dataset has none (LLMConfig.reads_captures)
        return self.config(target) is not None and target.batch is None

    async def run(self, source: SectionInput) -> LLMResult | None:
        t = source.target
        config = self.config(t)
        if config is None:
            return None
        return await run_llm(
            source.captures, t.endpoint, t.variant, t.target_model, config, source.window
        )

    def failed(self, error: str) -> LLMResult:
        return LLMResult(error=error)

    def outcome(self, result: LLMResult) -> Outcome:
        return Outcome(violations=len(result.violations), has_data=result.exchanges > 0)

    def violations(self, result: LLMResult) -> Sequence[Mapping[str, Any]]:
        return result.violations

    def report_files(self, result: LLMResult) -> list[tuple[str, object]]:
        files: list[tuple[str, object]] = []
        if result.statistics is not None:
            files.append(("llm/statistics.json", result.statistics))
        if result.evaluation is not None:
            files.append(("llm/drift.json", result.evaluation))
        files.append(("llm/constraint_violations.json", {"violations": result.violations}))
        files.append(("llm/run.json", result.document()))
        return files

    def html(self, result: LLMResult, page: PageContext) -> Fragment:
        return Fragment(llm_html(result, self.title))

    def metrics(self, results: Mapping[Ident, LLMResult], limits: Limits) -> Iterable[Metric]:
        return llm_metrics(results, limits.max_classes)


LLM = LLMSection()
