"""Check a TOML table against the dataclass it configures: keys, value types and bounds.

TOML gives ints, floats, strings, booleans, lists, tables and dates; a dataclass constructor
accepts any of them for any field. ``check_table`` turns a wrong type into a ConfigError that
names the key, the value and the expected type, before the value reaches code that would fail on
it later with a TypeError far from the file. Fields whose type is not a plain one (nested config
objects, Any) are left to their constructor.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal

from modeltap.core.errors import ConfigError


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {bool: "true or false", int: "an integer", float: "a finite number",
            str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))  # fmt: skip


def fits(tp: Any, value: Any) -> bool:
    """Whether a TOML value can stand for a field of type ``tp`` (unknown types: yes)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return any(fits(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            return math.isfinite(float(value))
        except OverflowError:  # an integer beyond float range
            return False
    if tp is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return isinstance(value, list | tuple) and all(fits(item, v) for v in value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return isinstance(value, tp | dict)
    return True


def check_table(cls: type[Any], table: Any, where: str) -> dict[str, Any]:
    """``table`` if it is a table whose keys are fields of ``cls`` with values of their types."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table, not {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    for key, value in table.items():
        tp = hints.get(key, Any)
        if not fits(tp, value):
            raise ConfigError(f"{where}: {key} = {value!r} must be {type_name(tp)}")
        low, high = fields[key].metadata.get("min"), fields[key].metadata.get("max")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if low is not None and (
                value <= low if fields[key].metadata.get("min_exclusive") else value < low
            ):
                raise ConfigError(f"{where}: {key} = {value!r} is below the minimum {low:g}")
            if high is not None and value > high:
                raise ConfigError(f"{where}: {key} = {value!r} is above the maximum {high:g}")
    return table
