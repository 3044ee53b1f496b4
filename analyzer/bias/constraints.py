"""Bias-drift constraints: suggested from a baseline report, checked against a window's report.

Clarify's rule (docs/formats.md §7): a metric is violated when the window's value is *worse*
than the baseline constraint, i.e. farther from the fair value: 0 for the differences, 1 for
DI (distance ``|DI - 1|``, as the rule reads). A baseline DPPL of 0.2 allows any value in
[-0.2, 0.2]; -0.3 is a violation, 0.1 is not.

Taken literally, a metric whose baseline is near 0 fires on every window's noise. So
``suggest_constraints`` keeps Clarify's layout (the baseline report itself, which is what
SageMaker hands over as the constraints) and adds to every metric an ``allowed_range``
``[c - r, c + r]`` around the fair value ``c``, where ``r = |baseline - c| + margin`` and::

    margin = max(sigmas * standard_deviation, slack * |baseline - c|, min_margin)

``standard_deviation`` is the baseline's bootstrap deviation (``metrics.compute(...,
bootstrap=B)``): the uncertainty of the baseline value itself. Metrics undefined or infinite in
the baseline get no constraint (an infinite baseline allows everything).

``check`` returns SageMaker's bias-drift violations::

    {"facet": "sex", "facet_value": "F", "metric_name": "DPPL",
     "constraint_check_type": "bias_drift_check",
     "description": "Value 0.31 does not meet the constraint requirement: ..."}

The window's noise is judged with its normal bootstrap interval C (``metrics.compute(...,
bootstrap=B)`` on the window), as Clarify's overview describes: a violation only when C and the
allowed range A are disjoint, i.e. the whole interval is worse. Without an interval the point
value is compared with A. A constraints document without ``allowed_range`` (a plain Clarify
``analysis.json``) is read by the literal rule, ``r = |baseline - c|``. A window value that is
undefined (null) cannot be judged and yields no violation; an infinite one violates any
finite range.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

from analyzer.bias.errors import BiasError
from analyzer.bias.metrics import SECTION, json_value, value_of

CHECK_TYPE = "bias_drift_check"
DEFAULT_SIGMAS = 3.0
DEFAULT_SLACK = 0.1
DEFAULT_MIN_MARGIN = 0.05
FAIR_VALUE = {"DI": 1.0}  # every other metric is fair at 0


def fair_value(metric: str) -> float:
    """The value of no bias: 1 for DI, 0 for the differences."""
    return FAIR_VALUE.get(metric, 0.0)


def _section(doc: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    section = doc.get(SECTION)
    if not isinstance(section, Mapping) or not isinstance(section.get("facets"), Mapping):
        raise BiasError(f"the {what} has no {SECTION}.facets section")
    return section


def _entries(section: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(facet, facet value, metric entry) of every metric in a report section."""
    for facet, values in section["facets"].items():
        if not isinstance(values, list):
            raise BiasError(f"facet {facet!r}: expected a list of value_or_threshold entries")
        for item in values:
            if not isinstance(item, Mapping) or not isinstance(item.get("metrics"), list):
                raise BiasError(f"facet {facet!r}: entry {item!r} has no metrics list")
            for m in item["metrics"]:
                if isinstance(m, dict) and isinstance(m.get("name"), str):
                    yield str(facet), str(item.get("value_or_threshold")), m


def suggest_constraints(
    baseline: Mapping[str, Any],
    *,
    sigmas: float = DEFAULT_SIGMAS,
    slack: float = DEFAULT_SLACK,
    min_margin: float = DEFAULT_MIN_MARGIN,
) -> dict[str, Any]:
    """The baseline report with an ``allowed_range`` on every finite metric (module docstring)."""
    if sigmas < 0 or slack < 0 or min_margin < 0:
        raise BiasError(
            f"sigmas, slack and min_margin must be >= 0; got {sigmas}, {slack}, {min_margin}"
        )
    out = copy.deepcopy(dict(baseline))
    for _, _, m in _entries(_section(out, "baseline report")):
        value = value_of(m.get("value"))
        if not math.isfinite(value):
            continue
        c = fair_value(m["name"])
        sd = value_of(m.get("standard_deviation"))
        distance = abs(value - c)
        margin = max(sigmas * sd if math.isfinite(sd) else 0.0, slack * distance, min_margin)
        m["allowed_range"] = [c - distance - margin, c + distance + margin]
    return out


def _allowed(m: Mapping[str, Any]) -> tuple[float, float] | None:
    given = m.get("allowed_range")
    if given is not None:
        if not isinstance(given, list) or len(given) != 2:
            raise BiasError(f"metric {m.get('name')!r}: allowed_range must be [low, high]")
        lo, hi = value_of(given[0]), value_of(given[1])
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise BiasError(f"metric {m.get('name')!r}: bad allowed_range {given!r}")
        return lo, hi
    value = value_of(m.get("value"))
    if math.isnan(value):
        return None
    c = fair_value(str(m["name"]))
    r = abs(value - c)
    return c - r, c + r


def _interval(m: Mapping[str, Any], value: float) -> tuple[float, float]:
    ci = m.get("confidence_interval")
    if isinstance(ci, list) and len(ci) == 2:
        lo, hi = value_of(ci[0]), value_of(ci[1])
        if not (math.isnan(lo) or math.isnan(hi)):
            return lo, hi
    return value, value


def check(current: Mapping[str, Any], constraints: Mapping[str, Any]) -> list[dict[str, str]]:
    """The window report's bias-drift violations of ``constraints``, SageMaker's dicts."""
    window = {
        (facet, fv, m["name"]): m for facet, fv, m in _entries(_section(current, "window report"))
    }
    violations = []
    for facet, fv, c in _entries(_section(constraints, "constraints")):
        allowed = _allowed(c)
        m = window.get((facet, fv, c["name"]))
        if allowed is None or m is None:
            continue
        value = value_of(m.get("value"))
        if math.isnan(value):
            continue
        lo, hi = _interval(m, value)
        if hi < allowed[0] or lo > allowed[1]:
            within = (
                "" if (lo, hi) == (value, value) else f", bootstrap interval [{lo:.4g}, {hi:.4g}]"
            )
            violations.append(
                {
                    "facet": facet,
                    "facet_value": fv,
                    "metric_name": c["name"],
                    "constraint_check_type": CHECK_TYPE,
                    "description": (
                        f"Value {json_value(value)} does not meet the constraint requirement: "
                        f"allowed range [{allowed[0]:.4g}, {allowed[1]:.4g}] "
                        f"(baseline {json_value(value_of(c.get('value')))}){within}"
                    ),
                }
            )
    return violations


def violations_file(violations: list[dict[str, str]]) -> dict[str, Any]:
    """The ``constraint_violations.json`` document."""
    return {"version": "1.0", "violations": violations}
