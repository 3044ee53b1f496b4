"""Typed, validated configuration objects loaded from a file, the environment and flags.

Every command's configuration (the sidecar's, the monitor's TOML, the baseline's options) is a tree
of frozen dataclasses. Every leaf field carries a one-line ``doc`` and optional bounds in its
metadata, so one definition gives the defaults, the validation, the environment variable and flag
names, the ``--help-config`` table and the README's.

The root's fields are tables: a section (a dataclass: ``[server]``) or an array of tables (a tuple
of dataclasses: ``[[endpoints]]``); a ``subtables`` field holds tables whose types are known only
when the configuration is read (each registered monitoring section's), at the root or in a table. A table's field may itself be a table (``[endpoints.quality]``,
optional when typed ``X | None``). Leaves of the root's sections can also be set by
``{PREFIX}{SECTION}_{FIELD}`` environment variables and ``--section.field`` flags (or the
command's own flags, given as ``overrides``); leaves inside arrays and sub-tables only in the file.

Precedence, lowest first: defaults, the TOML file, environment variables, flags. An unknown
variable with the command's prefix, an unknown flag or file key (with the nearest known name), a
missing required key, a value of the wrong type or out of range, or a failed ``validate()`` of a
table is a :class:`ConfigError` of one line that names its source, the value seen and what is
allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

from modeltap.core.errors import ConfigError

T = TypeVar("T")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""``setting(REQUIRED, doc)``: a key the file must give (declare the dataclass ``kw_only``)."""


def setting(
    default: Any,
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    secret: bool = False,
    flag: str | None = None,
    negative: str | None = None,
    metavar: str | None = None,
    repeat: bool = False,
) -> Any:
    """Declare a configuration field with its documentation and bounds.

    A ``secret`` field is left out of the object's repr, so logging a config never shows it.
    ``flag`` (and for a bool, ``negative``) name the field's option in a command whose options
    are its own (``add_arguments``) rather than ``--section.field``; a list's option takes
    comma-separated values, or one value per use with ``repeat``.
    """
    meta = {
        "doc": doc, "min": min, "max": max, "min_exclusive": min_exclusive,
        "max_exclusive": max_exclusive,
        "flag": flag, "negative": negative, "metavar": metavar, "repeat": repeat,
    }  # fmt: skip
    if isinstance(default, list | dict | set):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    if default is REQUIRED:
        return dataclasses.field(metadata=meta, repr=not secret)
    return dataclasses.field(default=default, metadata=meta, repr=not secret)


def subtables(tables: Callable[[], Mapping[str, type[Any]]], doc: str) -> Any:
    """Declare a field that holds the table's named sub-tables whose types are not known to the
    table itself: ``tables()`` gives ``{name: dataclass}`` when the configuration is read (e.g.
    each registered monitoring section's ``[endpoints.<name>]``). The file writes each as a
    sub-table of the table (``[endpoints.quality]``); the field holds those given, by name.
    """
    return dataclasses.field(
        default_factory=dict, metadata={"doc": doc, "subtables": tables}, compare=False
    )


def _subtables(cls: type[Any]) -> tuple[str | None, Mapping[str, type[Any]]]:
    """(the name of ``cls``'s subtables field, or None; its tables by name)."""
    for f in dataclasses.fields(cls):
        tables = f.metadata.get("subtables")
        if tables is not None:
            return f.name, tables()
    return None, {}


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One leaf of a configuration tree, as the loader and the docs see it."""

    section: str  # the table's path: "server", "endpoints[]", "endpoints[].quality"
    name: str
    type: Any
    default: Any
    doc: str
    min: float | None
    max: float | None
    min_exclusive: bool
    overridable: bool = True  # a leaf of a root section: environment variable and flag
    max_exclusive: bool = False
    cli: str | None = None  # the command's own option for it (``setting(flag=...)``)
    negative: str | None = None
    metavar: str | None = None
    repeat: bool = False

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def env_name(self, prefix: str) -> str:
        return f"{prefix}{self.section}_{self.name}".upper()

    @property
    def flag(self) -> str:
        return f"--{self.section}.{self.name.replace('_', '-')}"


def _table_type(tp: Any) -> tuple[type[Any] | None, bool]:
    """(the dataclass of a table field, or None for a leaf; whether it is an array of them).

    A table typed ``X | None`` is optional: None unless the file has it."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _table_type(args[0]) if len(args) == 1 else (None, False)
    if origin is tuple:
        item = typing.get_args(tp)[:1]
        if item and dataclasses.is_dataclass(item[0]) and isinstance(item[0], type):
            return item[0], True
        return None, False
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp, False
    return None, False


def _leaves(cls: type[Any], section: str, overridable: bool) -> Iterator[FieldInfo]:
    hints = typing.get_type_hints(cls)
    holder, tables = _subtables(cls)
    for f in dataclasses.fields(cls):
        if f.name == holder:
            for name, sub_cls in tables.items():
                yield from _leaves(sub_cls, f"{section}.{name}", False)
            continue
        tp = hints[f.name]
        sub, array = _table_type(tp)
        if sub is not None:
            yield from _leaves(sub, f"{section}.{f.name}{'[]' if array else ''}", False)
            continue
        default: Any = f.default
        if default is dataclasses.MISSING:
            factory: Any = f.default_factory
            default = REQUIRED if factory is dataclasses.MISSING else factory()
        yield FieldInfo(
            section=section,
            name=f.name,
            type=tp,
            default=default,
            doc=f.metadata.get("doc", ""),
            min=f.metadata.get("min"),
            max=f.metadata.get("max"),
            min_exclusive=f.metadata.get("min_exclusive", False),
            overridable=overridable,
            max_exclusive=f.metadata.get("max_exclusive", False),
            cli=f.metadata.get("flag"),
            negative=f.metadata.get("negative"),
            metavar=f.metadata.get("metavar"),
            repeat=f.metadata.get("repeat", False),
        )


def fields_of(root: type[Any]) -> Iterator[FieldInfo]:
    """Yield every leaf field of a root config class, table by table."""
    hints = typing.get_type_hints(root)
    holder, tables = _subtables(root)
    for sec in dataclasses.fields(root):
        if sec.name == holder:
            for name, sub_cls in tables.items():
                yield from _leaves(sub_cls, name, True)
            continue
        cls, array = _table_type(hints[sec.name])
        if cls is None:
            raise TypeError(f"{root.__name__}.{sec.name}: a root field must be a table")
        yield from _leaves(cls, f"{sec.name}[]" if array else sec.name, not array)


def type_name(tp: Any) -> str:
    """A field's type as the docs and error messages spell it."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert(tp: Any, raw: Any, where: str) -> Any:
    """Convert a raw value (a string from env/flags, or a TOML value) to ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if type(None) in args and (raw is None or (isinstance(raw, str) and raw == "")):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, raw, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}={raw!r}: expected {type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if any(raw == c and type(raw) is type(c) for c in choices):
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
        return tuple(convert(item, p, where) for p in parts)
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
        if not isinstance(raw, str):
            raise ConfigError(f"{where}={raw!r}: expected an integer")
        try:
            return int(raw.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{where}={raw!r}: expected an integer") from None
    if tp is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
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
    over = info.max is not None and (value >= info.max if info.max_exclusive else value > info.max)
    if info.max is not None and over:
        op = "<" if info.max_exclusive else "<="
        raise ConfigError(f"{where}={value!r}: must be {op} {info.max:g}")


def suggest(name: str, known: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the known name nearest to ``name``, or ''."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_flags(argv: Sequence[str], infos: Sequence[FieldInfo]) -> dict[str, tuple[str, str]]:
    """Parse ``--section.field value`` / ``--section.field=value`` into ``{key: (flag, raw)}``."""
    infos = [i for i in infos if i.overridable]
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
            raise ConfigError(f"unknown option {name}{suggest(name, sorted(by_flag))}")
        if not eq:
            if info.type is bool and (not args or args[0].startswith("--")):
                raw = "true"
            elif not args:
                raise ConfigError(f"option {name} needs a value")
            else:
                raw = args.pop(0)
        out[info.key] = (name, raw)
    return out


def read_toml(file: Path) -> dict[str, Any]:
    """A TOML file as a dict; a file that cannot be read or parsed is one ConfigError line."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file} is not valid TOML (UTF-8): {exc}") from exc


def env_overrides(
    root: type[Any], env_prefix: str, environ: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """``{key: (variable, raw)}`` of the ``{PREFIX}*`` variables; an unknown one is an error."""
    names = {i.env_name(env_prefix): i for i in fields_of(root) if i.overridable}
    out: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(env_prefix):
            continue
        info = names.get(name)
        if info is None:
            raise ConfigError(f"unknown environment variable {name}{suggest(name, sorted(names))}")
        out[info.key] = (name, value)
    return out


def _validate(obj: Any, where: str) -> None:
    """Run ``obj.validate()``; a check that failed on a value (e.g. urlsplit on "s3://[")
    instead of rejecting it is still a configuration error, not a crash."""
    validate: Callable[[], None] | None = getattr(obj, "validate", None)
    if validate is None:
        return
    try:
        validate()
    except ConfigError as exc:
        if not where:
            raise
        raise ConfigError(f"{where}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{where + ': ' if where else ''}invalid configuration: {type(exc).__name__}: {exc}"
        ) from exc


def _build(
    cls: type[T],
    table: Mapping[str, Any],
    section: str,
    label: str,
    overrides: Mapping[str, tuple[str, Any]],
    *,
    nested: bool = False,
) -> T:
    """One table as ``cls``: known keys only, each converted, bounded and defaulted, then its
    ``validate()``.

    ``section`` is the table's path in keys ("capture", "endpoints[2].quality"); ``label`` is
    where its values come from ("FILE: " or ""). The errors of a ``nested`` table's
    ``validate()`` (in an array or a sub-table) are prefixed with its path; a root section's
    name their keys themselves (their values may come from the environment or flags).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls))}
    holder, tables = _subtables(cls)
    if holder is not None:
        del fields[holder]  # not a key of the file: its tables are
    for name in table:
        if name not in fields and name not in tables:
            key = f"{section}.{name}"
            known = [f"{section}.{n}" for n in [*fields, *tables]]
            raise ConfigError(f"{label}unknown key {key}{suggest(key, known)}")
    values: dict[str, Any] = {}
    if holder is not None:
        found: dict[str, Any] = {}
        for name, sub_cls in tables.items():
            if name in table:
                key, raw = f"{section}.{name}", table[name]
                if not isinstance(raw, dict):
                    raise ConfigError(f"{label}{key} must be a table, not {raw!r}")
                found[name] = _build(sub_cls, raw, key, label, {}, nested=True)
        values[holder] = found
    for name, f in fields.items():
        key, tp = f"{section}.{name}", hints[name]
        sub, array = _table_type(tp)
        if sub is not None:
            if name not in table:
                continue  # its default: None, (), or the default table
            raw = table[name]
            if array:
                if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
                    raise ConfigError(f"{label}{key} must be [[{key}]] tables")
                values[name] = tuple(
                    _build(sub, t, f"{key}[{i + 1}]", label, {}, nested=True)
                    for i, t in enumerate(raw)
                )
                continue
            if not isinstance(raw, dict):
                raise ConfigError(f"{label}{key} must be a table, not {raw!r}")
            values[name] = _build(sub, raw, key, label, {}, nested=True)
            continue
        info = FieldInfo(
            section, name, tp, None, "",
            f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("min_exclusive", False),
            max_exclusive=f.metadata.get("max_exclusive", False),
        )  # fmt: skip
        if key in overrides:
            where, raw = overrides[key]
            converted = convert(tp, raw, where)
        elif name in table:
            where = f"{label}{key}"
            converted = convert(tp, table[name], where)
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        else:
            raise ConfigError(f"{label}{section} needs {name}")
        _check_bounds(info, converted, where)
        values[name] = converted
    try:
        built = cls(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{label}{section}: {type(exc).__name__}: {exc}") from exc
    _validate(built, f"{label}{section}" if nested else "")
    return built


def load(
    root: type[T],
    *,
    env_prefix: str,
    environ: Mapping[str, str],
    argv: Sequence[str] = (),
    file: Path | None = None,
    overrides: Mapping[str, tuple[str, Any]] | None = None,
) -> T:
    """Build and validate ``root`` from defaults, an optional TOML file, the environment, flags
    (``--section.field``) and ``overrides`` (``{key: (where, raw)}``: a command's own flags)."""
    doc: dict[str, Any] = read_toml(file) if file is not None else {}
    label = f"{file}: " if file is not None else ""
    hints = typing.get_type_hints(root)
    tables = {f.name: f for f in dataclasses.fields(typing.cast(Any, root))}
    holder, held = _subtables(root)
    if holder is not None:
        del tables[holder]  # not a table of the file: its tables are
    for name, value in doc.items():
        if name not in tables and name not in held:
            known = sorted([*tables, *held])
            raise ConfigError(f"{label}unknown table [{name}]{suggest(name, known)}")
        array = name in tables and _table_type(hints[name])[1]
        if not array and not isinstance(value, dict):
            raise ConfigError(f"{label}[{name}] must be a table")
    given = env_overrides(root, env_prefix, environ)
    given.update(parse_flags(argv, list(fields_of(root))))
    given.update(overrides or {})
    values: dict[str, Any] = {}
    if holder is not None:
        values[holder] = {
            name: _build(cls, doc.get(name, {}), name, label, given) for name, cls in held.items()
        }
    for name in tables:
        cls, array = _table_type(hints[name])
        assert cls is not None  # fields_of checked it
        if array:
            raw = doc.get(name, [])
            if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
                raise ConfigError(f"{label}{name} must be [[{name}]] tables")
            values[name] = tuple(
                _build(cls, t, f"{name}[{i + 1}]", label, {}, nested=True)
                for i, t in enumerate(raw)
            )
        else:
            values[name] = _build(cls, doc.get(name, {}), name, label, given)
    config = root(**values)
    _validate(config, "")
    return config


def markdown_table(root: type[Any], env_prefix: str) -> str:
    """Render the configuration reference as a Markdown table (the README's source)."""
    rows = ["| option | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
    for info in fields_of(root):
        default = info.default
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        shown = (
            "(required)"
            if info.required
            else "(none)"
            if default is None
            else "(empty)"
            if default == ""
            else f"`{default}`"
        )
        env = f"`{info.env_name(env_prefix)}`" if info.overridable else "(file only)"
        option = f"`{info.key}`"
        if info.cli:
            option = f"`{info.cli}`" + (f" / `{info.negative}`" if info.negative else "")
        rows.append(
            f"| {option} | {env} | "
            f"{type_name(info.type).replace('|', chr(92) + '|')} "
            f"| {shown} | {info.doc} |"
        )
    return "\n".join(rows)


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line and exit status 2, as a bad setting's."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: configuration error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _dest(info: FieldInfo) -> str:
    return "setting:" + info.key


def _metavar(tp: Any) -> str:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is Literal:
        return "{" + ",".join(str(a) for a in typing.get_args(tp) if a != "") + "}"
    return {int: "N", float: "X"}.get(tp, "VALUE")


def add_arguments(parser: argparse.ArgumentParser, root: type[Any]) -> None:
    """Add each leaf with a ``flag`` as an option of ``parser``, one argument group per section
    (its class docstring as the description). Values stay raw strings (None when not given);
    ``flag_overrides`` hands them to :func:`load`, which converts and checks them."""
    hints = typing.get_type_hints(root)
    hints.update(_subtables(root)[1])
    groups: dict[str, Any] = {}
    for info in fields_of(root):
        if info.cli is None:
            continue
        if info.section not in groups:
            cls = hints[info.section]
            doc = (cls.__doc__ or "").strip().replace("%", "%%")
            title, _, rest = doc.partition("\n\n")
            groups[info.section] = parser.add_argument_group(title or info.section, rest or None)
        group = groups[info.section]
        shown = "" if info.default in (None, "", (), REQUIRED) else f" (default {info.default})"
        help_ = (info.doc + shown).replace("%", "%%")
        dest = _dest(info)
        metavar = info.metavar or _metavar(info.type)
        if info.type is bool or (info.type == bool | None):
            group.add_argument(info.cli, dest=dest, action="store_const", const="true", help=help_)
            if info.negative:
                group.add_argument(
                    info.negative, dest=dest, action="store_const", const="false",
                    help=f"the opposite of {info.cli}",
                )  # fmt: skip
        elif info.repeat:
            group.add_argument(info.cli, dest=dest, action="append", metavar=metavar, help=help_)
        else:
            group.add_argument(info.cli, dest=dest, metavar=metavar, help=help_)


def flag_overrides(args: argparse.Namespace, root: type[Any]) -> dict[str, tuple[str, Any]]:
    """``{key: (flag, raw)}`` of the options ``add_arguments`` added that were given."""
    out: dict[str, tuple[str, Any]] = {}
    for info in fields_of(root):
        raw = getattr(args, _dest(info), None) if info.cli else None
        if raw is not None:
            out[info.key] = (info.cli or info.key, raw)
    return out
