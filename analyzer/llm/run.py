"""One LLM run: the window's exchanges -> descriptor table -> profile against the LLM baseline ->
``analyzer.checks.evaluate`` (drift tests, constraints, violations), as for tabular features."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from analyzer.baseline import profile
from analyzer.checks import evaluate
from analyzer.llm.descriptors import DescriptorSettings, descriptor_table
from analyzer.llm.exchange import Exchange, Unreadable, from_record
from analyzer.profile import Profile
from analyzer.statistics import profile_to_statistics
from analyzer.window import Window, window_records
from modeltap.core.store.base import Store

CATEGORY_COLUMNS = ("model", "finish_reason", "prompt_script", "completion_script")


@dataclass(frozen=True)
class LLMTarget:
    """An endpoint's LLM baseline: the descriptors' profile, constraints and settings."""

    baseline: Profile
    constraints: dict[str, Any]
    settings: DescriptorSettings
    uri: str = ""


@dataclass
class LLMResult:
    """One window's LLM descriptors against the baseline (a failed run holds only ``error``)."""

    exchanges: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)  # records skipped, by reason
    means: dict[str, float] = field(default_factory=dict)  # numeric descriptors' window means
    baseline_means: dict[str, float] = field(default_factory=dict)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # categories' shares
    statistics: dict[str, Any] | None = None  # the window's statistics.json
    evaluation: dict[str, Any] | None = None  # drift.json layout (analyzer.checks.Evaluation)
    violations: list[dict[str, str]] = field(default_factory=list)
    captures_read: dict[str, int] = field(default_factory=dict)
    error: str = ""

    def document(self) -> dict[str, Any]:
        """llm/run.json: what the run read and found (the files beside it hold the rest)."""
        if self.error:
            return {"error": self.error, "violations": self.violations}
        drifted = [
            name
            for name, f in ((self.evaluation or {}).get("features") or {}).items()
            if (f.get("decision") or {}).get("drift")
        ]
        return {
            "exchanges": self.exchanges,
            "unreadable": self.unreadable,
            "captures_read": self.captures_read,
            "means": self.means,
            "baseline_means": self.baseline_means,
            "shares": self.shares,
            "drifted": drifted,
            "violations": self.violations,
        }


def _means(prof: Profile) -> dict[str, float]:
    out = {}
    for name, col in prof.columns.items():
        if prof.inferred_type(name).is_numeric and col.numeric.count:
            mean = col.numeric.mean
            if math.isfinite(mean):
                out[name] = float(mean)
    return out


def _shares(prof: Profile) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in CATEGORY_COLUMNS:
        col = prof.columns.get(name)
        if col is None or col.strings is None:
            continue
        values, counts = col.strings.items()
        total = sum(counts) + col.strings.other_count
        if total:
            out[name] = {str(v): c / total for v, c in zip(values, counts, strict=True)}
    return out


def evaluate_exchanges(target: LLMTarget, exchanges: list[Exchange]) -> LLMResult:
    """The checks of a window's exchanges against the target's baseline (pure, no I/O)."""
    result = LLMResult(exchanges=len(exchanges), baseline_means=_means(target.baseline))
    if not exchanges:
        return result
    table = descriptor_table(exchanges, target.settings)
    table = table.select([c for c in target.baseline.columns if c in table.column_names])
    window = profile(table, baseline=target.baseline)
    ev = evaluate(target.baseline, target.constraints, window, observed_columns=table.column_names)
    result.means = _means(window)
    result.shares = _shares(window)
    result.statistics = profile_to_statistics(window)
    result.evaluation = ev.to_dict()
    result.violations = [v.to_dict() for v in ev.violations]
    return result


def _read(records: list[dict[str, Any]]) -> tuple[list[Exchange], dict[str, int]]:
    exchanges: list[Exchange] = []
    unreadable: dict[str, int] = {}
    for rec in records:
        try:
            exchanges.append(from_record(rec))
        except Unreadable as exc:
            unreadable[exc.reason] = unreadable.get(exc.reason, 0) + 1
    return exchanges, unreadable


def _evaluate(target: LLMTarget, records: list[dict[str, Any]]) -> LLMResult:
    exchanges, unreadable = _read(records)
    result = evaluate_exchanges(target, exchanges)
    result.unreadable = unreadable
    return result


async def run_llm(
    captures: Store, endpoint: str, variant: str, target_model: str, target: LLMTarget,
    window: Window,
) -> LLMResult:  # fmt: skip
    """The LLM section of one run (parsing and checks on a worker thread, off the loop)."""
    records, read = await window_records(captures, endpoint, variant, window, target_model)
    result = await asyncio.to_thread(_evaluate, target, records)
    result.captures_read = read.counts()
    return result
