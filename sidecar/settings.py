"""Typed, validated configuration objects loaded from a file, the environment and flags.

A component's configuration is a tree of frozen dataclasses: sections of fields. Every field carries
a one-line ``doc`` and optional bounds in its metadata, so one definition gives the defaults, the
validation, the environment variable and flag names, and the README table.

Precedence, lowest first: defaults, a TOML file, ``{PREFIX}{SECTION}_{FIELD}`` environment
variables, ``--section.field value`` flags. An unknown variable with the component's prefix, an
unknown flag or file key, or a value out of range is a :class:`ConfigError` that names its source,
the value seen and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from modeltap.core.errors import ConfigError

T = TypeVar("T")


def setting(
    default: Any,
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    secret: bool = False,
) -> Any:
    """Declare a configuration field with its documentation and bounds.

    A ``secret`` field is left out of the object's repr, so logging a config never shows it.
    """
    meta = {"doc": doc, "min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, list | dict | set):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    return dataclasses.field(default=default, metadata=meta, repr=not secret)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One leaf of a configuration tree, as the loader and the docs see it."""

    section: str
    name: str
    type: Any
    default: Any
    doc: str
    min: float | None
    max: float | None
    min_exclusive: bool

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    def env_name(self, prefix: str) -> str:
        return f"{prefix}{self.section}_{self.name}".upper()

    @property
    def flag(self) -> str:
        return f"--{self.section}.{self.name.replace('_', '-')}"


def fields_of(root: type[Any]) -> Iterator[FieldInfo]:
    """Yield every leaf field of a root config class, section by section."""
    hints = typing.get_type_hints(root)
    for sec in dataclasses.fields(root):
        sec_type = hints[sec.name]
        sec_hints = typing.get_type_hints(sec_type)
        for f in dataclasses.fields(sec_type):
            yield FieldInfo(
                section=sec.name,
                name=f.name,
                type=sec_hints[f.name],
                default=f.default,
                doc=f.metadata.get("doc", ""),
                min=f.metadata.get("min"),
                max=f.metadata.get("max"),
                min_exclusive=f.metadata.get("min_exclusive", False),
            )


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(tp: Any, raw: Any, where: str) -> Any:
    """Convert a raw value (a string from env/flags, or a TOML value) to ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if type(None) in args and (raw is None or (isinstance(raw, str) and raw == "")):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, raw, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}={raw!r}: expected {_type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if raw in choices:
            return raw
        raise ConfigError(f"{where}={raw!r}: must be one of {', '.join(map(repr, choices))}")
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if isinstance(raw, str):
            parts: Sequence[Any] = [p.strip() for p in raw.split(",") if p.strip()]
        elif isinstance(raw, list | tuple):
            parts = raw
        else:
            raise ConfigError(f"{where}={raw!r}: expected a comma-separated list")
        return tuple(_convert(item, p, where) for p in parts)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{where}={raw!r}: expected true or false")
    if tp is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{where}={raw!r}: expected an integer")
        if isinstance(raw, int):
            return raw
        try:
            return int(str(raw).strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{where}={raw!r}: expected an integer") from None
    if tp is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{where}={raw!r}: expected a number")
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a TOML int past 1e308
            raise ConfigError(f"{where}={raw!r}: expected a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where}={raw!r}: expected a finite number")
        return value
    if tp is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{where}={raw!r}: expected a string")
        return raw
    if tp is Path:
        if not isinstance(raw, str | Path) or str(raw) == "":
            raise ConfigError(f"{where}={raw!r}: expected a path")
        return Path(raw)
    raise TypeError(f"unsupported config type {tp!r}")


def _check_bounds(info: FieldInfo, value: Any, where: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if info.min is not None:
        bad = value <= info.min if info.min_exclusive else value < info.min
        if bad:
            op = ">" if info.min_exclusive else ">="
            raise ConfigError(f"{where}={value!r}: must be {op} {info.min:g}")
    if info.max is not None and value > info.max:
        raise ConfigError(f"{where}={value!r}: must be <= {info.max:g}")


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_flags(argv: Sequence[str], infos: Sequence[FieldInfo]) -> dict[str, tuple[str, str]]:
    """Parse ``--section.field value`` / ``--section.field=value`` into ``{key: (flag, raw)}``."""
    by_flag = {i.flag: i for i in infos}
    by_flag.update({f"--{i.key}": i for i in infos})
    out: dict[str, tuple[str, str]] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            raise ConfigError(
                f"unexpected argument {arg!r}; options look like --section.field VALUE"
            )
        name, eq, raw = arg.partition("=")
        info = by_flag.get(name)
        if info is None:
            raise ConfigError(f"unknown option {name}{_suggest(name, sorted(by_flag))}")
        if not eq:
            if info.type is bool and (not args or args[0].startswith("--")):
                raw = "true"
            elif not args:
                raise ConfigError(f"option {name} needs a value")
            else:
                raw = args.pop(0)
        out[info.key] = (name, raw)
    return out


def load(
    root: type[T],
    *,
    env_prefix: str,
    environ: Mapping[str, str],
    argv: Sequence[str] = (),
    file: Path | None = None,
) -> T:
    """Build and validate ``root`` from defaults, an optional TOML file, the environment and flags."""
    infos = list(fields_of(root))
    by_key = {i.key: i for i in infos}
    raw: dict[str, tuple[str, Any]] = {}

    if file is not None:
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc
        for section, values in doc.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{file}: [{section}] must be a table")
            for name, value in values.items():
                key = f"{section}.{name}"
                if key not in by_key:
                    raise ConfigError(f"{file}: unknown key {key}{_suggest(key, sorted(by_key))}")
                raw[key] = (f"{file}: {key}", value)

    env_names = {i.env_name(env_prefix): i for i in infos}
    for name, value in environ.items():
        if not name.startswith(env_prefix):
            continue
        info = env_names.get(name)
        if info is None:
            raise ConfigError(
                f"unknown environment variable {name}{_suggest(name, sorted(env_names))}"
            )
        raw[info.key] = (name, value)

    for key, (flag, value) in parse_flags(argv, infos).items():
        raw[key] = (flag, value)

    sections: dict[str, dict[str, Any]] = {}
    for info in infos:
        if info.key in raw:
            where, value = raw[info.key]
            converted = _convert(info.type, value, where)
        else:
            where, converted = f"default {info.key}", info.default
        _check_bounds(info, converted, where)
        sections.setdefault(info.section, {})[info.name] = converted

    hints = typing.get_type_hints(root)
    try:
        built = {name: hints[name](**values) for name, values in sections.items()}
        config = root(**built)
        validate: Callable[[], None] | None = getattr(config, "validate", None)
        if validate is not None:
            validate()
    except (ValueError, TypeError) as exc:
        # A check of the config's own that failed on a value instead of rejecting it (e.g.
        # urlsplit on "s3://[") is still a configuration error, not a crash.
        raise ConfigError(f"invalid configuration: {type(exc).__name__}: {exc}") from exc
    return config


def markdown_table(root: type[Any], env_prefix: str) -> str:
    """Render the configuration reference as a Markdown table (the README's source)."""
    rows = ["| option | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
    for info in fields_of(root):
        default = info.default
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        shown = "(none)" if default is None else "(empty)" if default == "" else f"`{default}`"
        rows.append(
            f"| `{info.key}` | `{info.env_name(env_prefix)}` | "
            f"{_type_name(info.type).replace('|', chr(92) + '|')} "
            f"| {shown} | {info.doc} |"
        )
    return "\n".join(rows)
