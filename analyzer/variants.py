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
from typing import Any

from analyzer.checks import evaluate
from analyzer.results import FAILED, NO_DATA, RunResult
from analyzer.targets import Target

log = logging.getLogger(__name__)

DRIFT_CHECK = "baseline_drift_check"


def compare(reference: tuple[Target, RunResult], other: tuple[Target, RunResult]) -> dict[str, Any]:
    """The ``variants.json`` document of ``other`` against ``reference`` (both already run)."""
    ref_target, ref = reference
    target, result = other
    doc: dict[str, Any] = {
        "endpoint": result.endpoint,
        "variant": result.variant,
        "reference_variant": ref.variant,
        "rows": result.rows,
        "reference_rows": ref.rows,
    }
    if ref_target.baseline_uri != target.baseline_uri:
        doc["skipped"] = (
            f"not compared: {ref.variant} and {result.variant} have different baselines "
            f"({ref_target.baseline_uri} vs {target.baseline_uri})"
        )
        return doc
    if ref.profile is None or result.profile is None:
        doc["skipped"] = "not compared: a variant has no data in this window"
        return doc
    ev = evaluate(ref.profile, ref_target.constraints, result.profile)
    doc["features"] = ev.to_dict()["features"]
    doc["drifted"] = sorted(f.name for f in ev.features.values() if f.drift)
    doc["violations"] = [
        v.to_dict() for v in ev.violations if v.constraint_check_type == DRIFT_CHECK
    ]
    return doc


async def compare_variants(runs: Sequence[tuple[Target, RunResult]]) -> None:
    """Attach a comparison to every non-reference variant whose reference ran (in place)."""
    groups: dict[tuple[str, str], list[tuple[Target, RunResult]]] = {}
    for target, result in runs:
        if target.batch is None:
            groups.setdefault((target.endpoint, target.target_model), []).append((target, result))
    for members in groups.values():
        reference, *others = members
        for other in others:
            if FAILED in (reference[1].status, other[1].status):
                continue
            if NO_DATA in (reference[1].status, other[1].status):
                other[1].comparison = compare(reference, other)
                continue
            try:
                other[1].comparison = await asyncio.to_thread(compare, reference, other)
                other[1].reference_profile = reference[1].profile
            except Exception:  # a comparison failure must not fail the variant's own run
                log.exception(
                    "comparing %s/%s with %s failed",
                    other[1].endpoint,
                    other[1].variant,
                    reference[1].variant,
                )
