"""statistics.json: a Profile to and from SageMaker's layout (docs/formats.md §2).

What SageMaker tooling reads is written where it expects it: ``dataset.item_count`` and per
feature ``inferred_type`` and ``numerical_statistics`` (``common``, mean, sum, std_dev, min, max,
``distribution.kll`` with 10 buckets and the sketch) or ``string_statistics`` (``common``,
``distinct_count``, ``distribution.categorical.buckets`` with every counted value, most frequent
first). Everything else a merge or a drift test needs (type counts, M2, the exact bins, the CPC
sketch, the other-mass of capped categories, the settings) sits under ``modeltap`` keys, at the
top level and per feature, so a file we write round-trips exactly and SageMaker ignores the rest.

A file without ``modeltap`` keys is read as SageMaker wrote it: types are taken as given, M2 from
``std_dev``, the KLL sketch rebuilt from Deequ's weighted items and the bins derived from it (see
``analyzer.kll_layout``), category counts from the buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from analyzer.categorical import CategoricalSummary
from analyzer.errors import BaselineFormatError
from analyzer.inference import FRACTIONAL, INTEGRAL, NULL, STRING, TYPE_COUNT_NAMES, InferredType
from analyzer.kll_layout import (
    derived_bins,
    kll_buckets,
    kll_from_buckets,
    kll_from_levels,
    sketch_json,
)
from analyzer.numeric import NumericSummary, kll_from_b64, kll_rank_error, kll_to_b64
from analyzer.profile import ColumnProfile, Profile, ProfileConfig

FORMAT_VERSION = 1


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _common(col: ColumnProfile, present: int, rows: int) -> dict[str, int]:
    return {"num_present": present, "num_missing": rows - present}


def _numerical(col: ColumnProfile, rows: int) -> dict[str, Any]:
    num = col.numeric
    kll = kll_to_b64(num.kll)
    return {
        "common": _common(col, num.count, rows),
        "mean": _finite(num.mean) if num.count else None,
        "sum": num.sum,
        "std_dev": _finite(num.std_dev) if num.count else None,
        "min": num.min if num.count else None,
        "max": num.max if num.count else None,
        "distribution": {
            "kll": {
                "buckets": kll_buckets(num.kll, num.min, num.max) if num.count else [],
                "sketch": sketch_json(num.kll, kll),
            }
        },
    }


def _string(col: ColumnProfile, rows: int) -> dict[str, Any]:
    s = col.strings
    if s is None:
        return {
            "common": _common(col, 0, rows),
            "distinct_count": 0,
            "distribution": {"categorical": {"buckets": []}},
        }
    values, counts = s.items()
    return {
        "common": _common(col, col.num_present, rows),
        "distinct_count": s.distinct_count,
        "distribution": {
            "categorical": {
                "buckets": [{"value": v, "count": c} for v, c in zip(values, counts, strict=True)]
            }
        },
    }


def _feature(profile: Profile, name: str, col: ColumnProfile) -> dict[str, Any]:
    t = profile.inferred_type(name)
    rows = profile.item_count
    feature: dict[str, Any] = {"name": name, "inferred_type": str(t)}
    ext: dict[str, Any] = {
        "type_counts": dict(zip(TYPE_COUNT_NAMES, col.type_counts.tolist(), strict=True)),
        "fixed_type": None if col.fixed_type is None else str(col.fixed_type),
    }
    if name == profile.config.label:
        ext["role"] = "label"
    elif name == profile.config.prediction:
        ext["role"] = "prediction"
    if t.is_numeric:
        feature["numerical_statistics"] = _numerical(col, rows)
        ext["numeric"] = col.numeric.to_state(with_kll=False)
    elif col.numeric.count or t is InferredType.UNKNOWN or col.numeric.edges is not None:
        ext["numeric"] = col.numeric.to_state(with_kll=True)
    if t is InferredType.STRING:
        feature["string_statistics"] = _string(col, rows)
        if col.strings is not None:
            ext["strings"] = col.strings.to_state(with_counts=False)
    elif col.strings is not None:
        ext["strings"] = col.strings.to_state(with_counts=True)
    if col.text_values_missed:
        ext["text_values_missed"] = col.text_values_missed
    feature["modeltap"] = ext
    return feature


def profile_to_statistics(profile: Profile) -> dict[str, Any]:
    """The statistics.json dict of a profile."""
    return {
        "version": 0,
        "dataset": {"item_count": profile.item_count},
        "features": [_feature(profile, name, col) for name, col in profile.columns.items()],
        "modeltap": {"format": FORMAT_VERSION, "config": profile.config.to_state()},
    }


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise BaselineFormatError(f"statistics.json: {where} has no {key!r}")
    return mapping[key]


def profile_from_statistics(doc: Mapping[str, Any]) -> Profile:
    """A Profile from a statistics.json dict (ours, or one SageMaker wrote)."""
    ext = doc.get("modeltap") if isinstance(doc, Mapping) else None
    features = _require(doc, "features", "the document")
    item_count = int(_require(_require(doc, "dataset", "the document"), "item_count", "dataset"))
    if ext is not None:
        config = ProfileConfig.from_state(ext.get("config", {}))
    else:
        config = ProfileConfig(kll_k=_sagemaker_k(features))
    profile = Profile(config)
    profile.item_count = item_count
    for i, f in enumerate(features):
        name = str(_require(f, "name", f"features[{i}]"))
        try:
            col = (
                _read_ours(f, config) if "modeltap" in f else _read_sagemaker(f, config, item_count)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineFormatError(
                f"statistics.json: feature {name!r} is malformed ({exc})"
            ) from exc
        if col.rows != item_count:
            raise BaselineFormatError(
                f"statistics.json: feature {name!r} accounts for {col.rows} rows, item_count is {item_count}"
            )
        profile.columns[name] = col
    return profile


def _sagemaker_k(features: Any) -> int:
    for f in features:
        params = (
            f.get("numerical_statistics", {})
            .get("distribution", {})
            .get("kll", {})
            .get("sketch", {})
        )
        k = params.get("parameters", {}).get("k")
        if k:
            return max(8, min(65535, int(k)))
    return ProfileConfig().kll_k


def _read_ours(f: Mapping[str, Any], config: ProfileConfig) -> ColumnProfile:
    ext = f["modeltap"]
    fixed = ext.get("fixed_type")
    col = ColumnProfile(
        f["name"], config, fixed_type=None if fixed is None else InferredType(fixed)
    )
    col.type_counts = np.array(
        [int(ext["type_counts"][k]) for k in TYPE_COUNT_NAMES], dtype=np.int64
    )
    col.text_values_missed = int(ext.get("text_values_missed", 0))
    if "numerical_statistics" in f:
        sketch = f["numerical_statistics"]["distribution"]["kll"]["sketch"]
        col.numeric = NumericSummary.from_state(
            ext["numeric"], kll_from_b64(sketch["datasketches"])
        )
    elif "numeric" in ext:
        col.numeric = NumericSummary.from_state(ext["numeric"])
    if "string_statistics" in f and "strings" in ext:
        buckets = f["string_statistics"]["distribution"]["categorical"]["buckets"]
        col.strings = CategoricalSummary.from_state(
            ext["strings"], [str(b["value"]) for b in buckets], [int(b["count"]) for b in buckets]
        )
    elif "strings" in ext:
        col.strings = CategoricalSummary.from_state(ext["strings"])
    else:
        col.strings = None
    return col


def _read_sagemaker(f: Mapping[str, Any], config: ProfileConfig, item_count: int) -> ColumnProfile:
    t = InferredType(f["inferred_type"])
    col = ColumnProfile(f["name"], config, fixed_type=t)
    stats = f.get("numerical_statistics") or f.get("string_statistics")
    if stats is None:
        col.add_missing(item_count)
        return col
    present = int(stats["common"]["num_present"])
    if not 0 <= present <= item_count:
        raise BaselineFormatError(
            f"statistics.json: feature {f['name']!r} accounts for {present} rows, item_count is {item_count}"
        )
    slot = {InferredType.INTEGRAL: INTEGRAL, InferredType.FRACTIONAL: FRACTIONAL}.get(t, STRING)
    col.type_counts[slot] = present
    col.type_counts[NULL] = item_count - present
    if "numerical_statistics" in f:
        col.numeric = _sagemaker_numeric(f["numerical_statistics"], config, present)
    if "string_statistics" in f:
        col.strings = _sagemaker_strings(f["string_statistics"], config, present)
    return col


def _sagemaker_numeric(
    ns: Mapping[str, Any], config: ProfileConfig, present: int
) -> NumericSummary:
    kll = ns.get("distribution", {}).get("kll", {})
    sketch = kll.get("sketch", {})
    # The rank error of the CDF the bins are rebuilt from (99% confidence, whole CDF): one
    # sketch's; Deequ's plus the rebuild's for Deequ's items; a whole bucket for buckets alone.
    if "datasketches" in sketch:
        sk = kll_from_b64(sketch["datasketches"])
        rank_error = kll_rank_error(int(sk.k))
    elif sketch.get("data"):
        sk = kll_from_levels(sketch["data"], config.kll_k)
        rank_error = 2.0 * kll_rank_error(config.kll_k)
    else:
        buckets = kll.get("buckets", [])
        sk = kll_from_buckets(buckets, config.kll_k)
        sizes = [float(b["count"]) for b in buckets]
        rank_error = max(sizes) / present if sizes and present else 1.0
    std = float(ns.get("std_dev") or 0.0)
    state = {
        "count": present,
        "sum": float(ns.get("sum") or 0.0),
        "mean": float(ns.get("mean") or 0.0),
        "m2": std * std * present,
        "min": ns.get("min"),
        "max": ns.get("max"),
    }
    num = NumericSummary.from_state(state, sk)
    if present:
        edges, counts = derived_bins(sk, config.n_bins, present)
        num.edges, num.bins, num.bins_exact = edges, counts, False
        num.bins_rank_error = min(1.0, rank_error + 0.5 / present)
    return num


def _sagemaker_strings(
    ss: Mapping[str, Any], config: ProfileConfig, present: int
) -> CategoricalSummary:
    buckets = ss.get("distribution", {}).get("categorical", {}).get("buckets", [])
    values = [str(b["value"]) for b in buckets]
    counts = [round(float(b["count"])) for b in buckets]
    distinct = int(ss.get("distinct_count", len(values)))
    other = max(0, present - sum(counts))
    state = {
        "cap": max(config.category_cap, len(values)),
        "other_count": other,
        "distinct_exact": distinct <= len(values) and other == 0,
    }
    s = CategoricalSummary.from_state(state, values, counts)
    s.distinct_floor = distinct
    return s
