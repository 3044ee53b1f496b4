"""A/B: the variants of one endpoint compared with each other, beside each one's baseline check.

Each endpoint's first configured variant is the reference; every other variant's window is tested
against the reference's window with the same drift tests and thresholds (the reference's
constraints) that compare a window with its baseline. Two windows are comparable bin for bin when
both were profiled against the same baseline, the usual case of model versions served side by
side on the same inputs; variants with different baselines are reported as not compared.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.checks import evaluate
from analyzer.data_quality.result import DataResult
from analyzer.data_quality.section import DATA
from analyzer.evaluation import Evaluation
from analyzer.profile import Profile
from analyzer.results import FAILED, NO_DATA, RunResult
from analyzer.targets import Target

log = logging.getLogger(__name__)

DRIFT_CHECK = "baseline_drift_check"


@dataclass(frozen=True)
class VariantComparison:
    """One variant's window against the reference variant's (variants.json)."""

    endpoint: str
    variant: str
    reference_variant: str
    rows: int
    reference_rows: int
    skipped: str = ""  # why they were not compared ('' when they were)
    evaluation: Evaluation | None = None  # this window tested against the reference's
    reference_window: Profile | None = field(default=None, repr=False)  # drawn beside this one

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "endpoint": self.endpoint,
            "variant": self.variant,
            "reference_variant": self.reference_variant,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
        }
        if self.evaluation is None:
            doc["skipped"] = self.skipped
            return doc
        ev = self.evaluation
        doc["features"] = ev.to_dict()["features"]
        doc["drifted"] = sorted(f.name for f in ev.features.values() if f.drift)
        doc["violations"] = [
            v.to_dict() for v in ev.violations if v.constraint_check_type == DRIFT_CHECK
        ]
        return doc


def _window(result: RunResult) -> Profile | None:
    found = result.sections.get(DATA.name)
    return found.window if isinstance(found, DataResult) else None


def compare(
    reference: tuple[Target, RunResult], other: tuple[Target, RunResult]
) -> VariantComparison:
    """``other`` against ``reference`` (both already run)."""
    ref_target, ref = reference
    target, result = other
    head = (result.endpoint, result.variant, ref.variant, result.rows, ref.rows)
    if ref_target.baseline_uri != target.baseline_uri:
        return VariantComparison(*head, skipped=(
            f"not compared: {ref.variant} and {result.variant} have different baselines "
            f"({ref_target.baseline_uri} vs {target.baseline_uri})"
        ))  # fmt: skip
    ref_window, window = _window(ref), _window(result)
    if ref_window is None or window is None:
        return VariantComparison(
            *head, skipped="not compared: a variant has no data in this window"
        )
    ev = evaluate(ref_window, ref_target.constraints, window)
    return VariantComparison(*head, evaluation=ev, reference_window=ref_window)


async def compare_variants(
    runs: Sequence[tuple[Target, RunResult]],
) -> list[VariantComparison | None]:
    """A comparison for every non-reference variant whose reference ran (None for the others)."""
    found: list[VariantComparison | None] = [None] * len(runs)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (target, _) in enumerate(runs):
        if target.batch is None:
            groups.setdefault((target.endpoint, target.target_model), []).append(i)
    for members in groups.values():
        first, *others = members
        reference = runs[first]
        for i in others:
            other = runs[i]
            if FAILED in (reference[1].status, other[1].status):
                continue
            if NO_DATA in (reference[1].status, other[1].status):
                found[i] = compare(reference, other)
                continue
            try:
                found[i] = await asyncio.to_thread(compare, reference, other)
            except Exception:  # a comparison failure must not fail the variant's own run
                log.exception(
                    "comparing %s/%s with %s failed",
                    other[1].endpoint,
                    other[1].variant,
                    reference[1].variant,
                )
    return found
