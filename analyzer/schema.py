"""The documented schemas of statistics.json and constraints.json, and a small checker.

The schemas follow docs/formats.md §2 and §3 and are written in a JSON-Schema subset (type,
enum, required, properties, items, minimum, additionalProperties). ``validate`` returns every
problem as "path: message"; ``check_statistics``/``check_constraints`` raise BaselineFormatError.
Unknown keys are allowed where SageMaker's format is open (modeltap's own ``modeltap`` keys).
"""

from __future__ import annotations

from typing import Any

from analyzer.errors import BaselineFormatError

_NUM = {"type": ["number", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_COMMON = {
    "type": "object",
    "required": ["num_present", "num_missing"],
    "properties": {"num_present": _COUNT, "num_missing": _COUNT},
}
_TYPES = ["Integral", "Fractional", "String", "Unknown"]

STATISTICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "dataset", "features"],
    "properties": {
        "version": {"type": "number"},
        "dataset": {
            "type": "object",
            "required": ["item_count"],
            "properties": {"item_count": _COUNT},
        },
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "inferred_type"],
                "properties": {
                    "name": {"type": "string"},
                    "inferred_type": {"enum": _TYPES},
                    "numerical_statistics": {
                        "type": "object",
                        "required": [
                            "common",
                            "mean",
                            "sum",
                            "std_dev",
                            "min",
                            "max",
                            "distribution",
                        ],
                        "properties": {
                            "common": _COMMON,
                            "mean": _NUM,
                            "sum": _NUM,
                            "std_dev": _NUM,
                            "min": _NUM,
                            "max": _NUM,
                            "distribution": {
                                "type": "object",
                                "required": ["kll"],
                                "properties": {
                                    "kll": {
                                        "type": "object",
                                        "required": ["buckets", "sketch"],
                                        "properties": {
                                            "buckets": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": [
                                                        "lower_bound",
                                                        "upper_bound",
                                                        "count",
                                                    ],
                                                    "properties": {
                                                        "lower_bound": {"type": "number"},
                                                        "upper_bound": {"type": "number"},
                                                        "count": {"type": "number", "minimum": 0},
                                                    },
                                                },
                                            },
                                            "sketch": {
                                                "type": "object",
                                                "required": ["parameters", "data"],
                                                "properties": {
                                                    "parameters": {
                                                        "type": "object",
                                                        "required": ["c", "k"],
                                                        "properties": {
                                                            "c": {"type": "number"},
                                                            "k": {"type": "number", "minimum": 1},
                                                        },
                                                    },
                                                    "data": {
                                                        "type": "array",
                                                        "items": {
                                                            "type": "array",
                                                            "items": {"type": "number"},
                                                        },
                                                    },
                                                    "datasketches": {"type": "string"},
                                                },
                                            },
                                        },
                                    }
                                },
                            },
                        },
                    },
                    "string_statistics": {
                        "type": "object",
                        "required": ["common", "distinct_count", "distribution"],
                        "properties": {
                            "common": _COMMON,
                            "distinct_count": {"type": "number", "minimum": 0},
                            "distribution": {
                                "type": "object",
                                "required": ["categorical"],
                                "properties": {
                                    "categorical": {
                                        "type": "object",
                                        "required": ["buckets"],
                                        "properties": {
                                            "buckets": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["value", "count"],
                                                    "properties": {
                                                        "value": {"type": "string"},
                                                        "count": {"type": "number", "minimum": 0},
                                                    },
                                                },
                                            }
                                        },
                                    }
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

_ENABLED = {"enum": ["Enabled", "Disabled"]}
_THRESHOLD = {"type": "number", "minimum": 0}

CONSTRAINTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "features"],
    "properties": {
        "version": {"type": "number"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "inferred_type"],
                "properties": {
                    "name": {"type": "string"},
                    "inferred_type": {"enum": _TYPES},
                    "completeness": {"type": "number", "minimum": 0},
                    "num_constraints": {
                        "type": "object",
                        "properties": {"is_non_negative": {"type": "boolean"}},
                        "additionalProperties": False,
                    },
                    "string_constraints": {
                        "type": "object",
                        "properties": {"domains": {"type": "array", "items": {"type": "string"}}},
                        "additionalProperties": False,
                    },
                    "monitoringConfigOverrides": {"type": "object"},
                },
            },
        },
        "monitoring_config": {
            "type": "object",
            "properties": {
                "evaluate_constraints": _ENABLED,
                "emit_metrics": _ENABLED,
                "datatype_check_threshold": _THRESHOLD,
                "domain_content_threshold": _THRESHOLD,
                "distribution_constraints": {
                    "type": "object",
                    "properties": {
                        "perform_comparison": _ENABLED,
                        "comparison_threshold": _THRESHOLD,
                        "comparison_method": {"enum": ["Simple", "Robust"]},
                        "categorical_comparison_threshold": _THRESHOLD,
                        "categorical_drift_method": {"enum": ["LInfinity", "ChiSquared"]},
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    },
}

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, name: str) -> bool:
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, _PY_TYPES[name])


def validate(doc: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way ``doc`` breaks ``schema``, as "path: problem" strings."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(doc, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(doc).__name__}"]
    if "enum" in schema and doc not in schema["enum"]:
        errors.append(f"{path}: {doc!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(doc, int | float) and doc < schema["minimum"]:
        errors.append(f"{path}: {doc} is below {schema['minimum']}")
    if isinstance(doc, dict):
        errors.extend(
            f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in doc
        )
        props = schema.get("properties", {})
        for key, value in doc.items():
            if key in props:
                errors.extend(validate(value, props[key], f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected key {key!r}")
    if isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            errors.extend(validate(item, schema["items"], f"{path}[{i}]"))
    return errors


def _check(doc: Any, schema: dict[str, Any], what: str) -> None:
    errors = validate(doc, schema)
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise BaselineFormatError(f"{what} does not follow the format: {shown}")


def check_statistics(doc: Any) -> None:
    """Raise BaselineFormatError unless ``doc`` is a valid statistics.json."""
    _check(doc, STATISTICS_SCHEMA, "statistics.json")


def check_constraints(doc: Any) -> None:
    """Raise BaselineFormatError unless ``doc`` is a valid constraints.json."""
    _check(doc, CONSTRAINTS_SCHEMA, "constraints.json")
