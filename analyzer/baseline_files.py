"""Reading baseline files: JSON that does not parse, or does not have the documented shape, is one
line naming the file and the problem (``BaselineFormatError``), never a traceback mid-run.

constraints.json is checked when it is loaded, before any run: every value against the types of
docs/formats.md §3 (``analyzer.schema``; a feature needs only its ``name``, ``version`` may be
left out), and every key against the keys the checks read. A key the checks do not read would
silently leave its default in force (SageMaker's own documentation spells ``comparison_method`` as
``comparion_method``), so each one is named with the nearest known key: a warning by default, an
error with ``strict`` (``[monitor] strict_constraints``). ``monitoringConfigOverrides`` takes the
keys of ``monitoring_config``, flat or under ``distribution_constraints``, as ``analyzer.checks``
reads them. Keys under ``modeltap`` are the project's own and are not checked.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

import orjson

from analyzer.errors import BaselineFormatError
from analyzer.monitoring_config import MonitoringConfig
from analyzer.profile import Profile
from analyzer.schema import CONSTRAINTS_SCHEMA, validate
from analyzer.statistics import profile_from_statistics
from modeltap.core.store import open_store
from modeltap.core.store_config import StoreConnection

_OWN = "modeltap"  # the project's extension key, open anywhere


def parse_json(data: bytes, where: str) -> Any:
    """The JSON document ``data``; a BaselineFormatError naming ``where`` if it does not parse."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        size = f"{len(data):,} bytes"
        raise BaselineFormatError(f"{where} is not valid JSON ({exc}; {size})") from None


def read_profile(doc: Any, where: str) -> Profile:
    """The baseline profile of a statistics.json document; its problems name ``where``."""
    if not isinstance(doc, Mapping):
        raise BaselineFormatError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    try:
        return profile_from_statistics(doc)
    except BaselineFormatError as exc:
        raise BaselineFormatError(
            f"{where}: {str(exc).removeprefix('statistics.json: ')}"
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BaselineFormatError(
            f"{where} does not follow the format ({type(exc).__name__}: {exc})"
        ) from None


def _monitoring_keys() -> frozenset[str]:
    # Every MonitoringConfig field is read flat or under distribution_constraints (monitoring_config.py).
    return frozenset(f.name for f in dataclasses.fields(MonitoringConfig))


def _relaxed(schema: Any) -> Any:
    """The schema without closed key sets (unknown keys are named separately, with a hint)."""
    if isinstance(schema, dict):
        return {k: _relaxed(v) for k, v in schema.items() if k != "additionalProperties"}
    if isinstance(schema, list):
        return [_relaxed(v) for v in schema]
    return schema


def _constraints_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _relaxed(copy.deepcopy(CONSTRAINTS_SCHEMA))
    schema["required"] = ["features"]
    item = schema["properties"]["features"]["items"]
    item["required"] = ["name"]
    config = schema["properties"]["monitoring_config"]
    flat = {
        **{k: v for k, v in config["properties"].items() if k != "distribution_constraints"},
        **config["properties"]["distribution_constraints"]["properties"],
    }
    nested = {"type": "object", "properties": flat}
    config["properties"]["distribution_constraints"] = nested
    item["properties"]["monitoringConfigOverrides"] = {
        "type": "object",
        "properties": {**flat, "distribution_constraints": nested},
    }
    return schema


_SCHEMA = _constraints_schema()
_FEATURE_KEYS = frozenset(_SCHEMA["properties"]["features"]["items"]["properties"])
_TOP_KEYS = frozenset(_SCHEMA["properties"])


def _unknown(doc: Mapping[str, Any], known: frozenset[str], path: str) -> list[str]:
    out = []
    for key in doc:
        if key in known or key == _OWN:
            continue
        near = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(sorted(known))})"
        out.append(f"{path}{'.' if path else ''}{key}{hint}")
    return out


def unknown_constraint_keys(doc: Mapping[str, Any]) -> list[str]:
    """Each key of a constraints.json (already type-checked) that the checks do not read."""
    mon = _monitoring_keys()
    mon_nested = mon | {"distribution_constraints"}
    found = _unknown(doc, _TOP_KEYS, "")
    config = doc.get("monitoring_config") or {}
    found += _unknown(config, mon_nested, "monitoring_config")
    found += _unknown(
        config.get("distribution_constraints") or {},
        mon,
        "monitoring_config.distribution_constraints",
    )
    for i, feat in enumerate(doc.get("features") or []):
        where = f"features[{i}] ({feat.get('name')!r})"
        found += _unknown(feat, _FEATURE_KEYS, where)
        found += _unknown(feat.get("num_constraints") or {}, frozenset({"is_non_negative"}),
                          f"{where}.num_constraints")  # fmt: skip
        found += _unknown(feat.get("string_constraints") or {}, frozenset({"domains"}),
                          f"{where}.string_constraints")  # fmt: skip
        overrides = feat.get("monitoringConfigOverrides") or {}
        found += _unknown(overrides, mon_nested, f"{where}.monitoringConfigOverrides")
        found += _unknown(
            overrides.get("distribution_constraints") or {},
            mon,
            f"{where}.monitoringConfigOverrides.distribution_constraints",
        )
    return found


def check_constraints_file(doc: Any, where: str, *, strict: bool = False) -> list[str]:
    """Warnings about a data constraints.json (unknown keys); BaselineFormatError when its values
    do not have the documented types, or with ``strict`` when a key is unknown."""
    errors = validate(doc, _SCHEMA)
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise BaselineFormatError(
            f"{where} does not follow the format: {'; '.join(errors[:3])}{more}"
        )
    unknown = unknown_constraint_keys(doc)
    if unknown and strict:
        raise BaselineFormatError(
            f"{where}: unknown key(s) {'; '.join(unknown)} (strict_constraints is on)"
        )
    return [f"{where}: unknown key {k} is ignored" for k in unknown]


__all__ = ["check_constraints_file", "parse_json", "read_profile", "unknown_constraint_keys"]


async def read_json_files(
    uri: str, names: tuple[str, ...], store_cfg: StoreConnection
) -> list[Any]:
    """The baseline files ``names`` under ``uri``; one that is not JSON is a BaselineFormatError."""
    store = open_store(uri, store_cfg)
    try:
        base = uri.rstrip("/")
        return [parse_json(await store.get(name), f"{base}/{name}") for name in names]
    finally:
        await store.close()
