"""Redaction of captured payloads, applied on the spool writer's thread before a record is written.

Rules are per side (input, output) and per encoding:

- JSON payloads (one document, or JSON Lines: one per line): every value a path selects is
  replaced. Paths are a small dotted grammar: ``name``, ``.name``, ``['name']``, ``[i]`` (negative
  from the end), ``[*]`` (every element), with an optional leading ``$``; e.g.
  ``instances[*].email`` or ``$.customer['tax.id']``. A path that selects nothing is not an error.
  The document is re-serialized compactly (orjson).
- CSV payloads: the listed 0-based columns of every row are replaced; a row without such a column
  is left as is. Rows are re-written with minimal quoting, keeping the line ending and whether the
  payload ended with one.

- Text patterns (``redact.patterns``: the built-in ``email``, ``phone``, ``card``; and
  ``redact.regexes``), on both sides: every match in a JSON string value (keys and numbers are
  left alone), a CSV cell, or the text of an event stream (``TEXT``: each ``data:`` line or NDJSON
  line that is JSON has its string values scanned, other lines as text) is replaced. The gen_ai
  fields the writer derives (the assembled completion) pass the same patterns, after being
  assembled from the already redacted events: a value split across two stream events is caught
  in the completion but may stay, in two pieces, in the raw stream; a JSON path rule on
  ``choices[*].delta.content`` replaces every piece.
- Event streams (``TEXT``) also take the JSON path rules, applied to each event's JSON.

A replacement is :class:`Replacement`'s marker, or the first ``n`` hex characters of
``HMAC-SHA256(key, text)``, where ``text`` is a string value as it is, a CSV cell's text, or
another JSON value's compact serialization (``42``, ``true``, ``{"a":1}``). Equal values give equal
digests under one key, across restarts and replicas, so joins on a redacted column still work;
without the key the digest cannot be reversed or recomputed from guesses.

Never in clear: when a side has rules, a non-empty payload that no rule can read (invalid JSON,
undecodable CSV, a base64 payload, or an encoding that side has no rule for) raises
:class:`RedactionError` and the record is dropped, never written unredacted.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from modeltap.core.errors import ConfigError, RedactionError
from modeltap.core.pii import BUILTIN_PATTERNS, TextPattern, compile_patterns, luhn_ok
from sidecar.config import RedactConfig
from sidecar.redact_paths import Step, compile_path

__all__ = [
    "BUILTIN_PATTERNS",
    "Redactor",
    "Replacement",
    "SideRules",
    "TextPattern",
    "build_redactor",
    "compile_path",
    "compile_patterns",
    "luhn_ok",
]


def _replace_at(node: Any, steps: tuple[Step, ...], replace: Callable[[Any], str]) -> None:
    """Replace, in place, every value of ``node`` that ``steps`` select."""
    step, rest = steps[0], steps[1:]
    if step is None:
        if isinstance(node, list):
            keys: range | list[Any] = range(len(node))
        elif isinstance(node, dict):
            keys = list(node)
        else:
            return
    elif isinstance(step, int):
        if not isinstance(node, list) or not -len(node) <= step < len(node):
            return
        keys = [step]
    else:
        if not isinstance(node, dict) or step not in node:
            return
        keys = [step]
    for key in keys:
        if rest:
            _replace_at(node[key], rest, replace)
        else:
            node[key] = replace(node[key])


@dataclass(frozen=True)
class SideRules:
    """What to redact on one side (input or output)."""

    json_paths: tuple[tuple[Step, ...], ...] = ()
    csv_columns: frozenset[int] = frozenset()
    patterns: tuple[TextPattern, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.json_paths or self.csv_columns or self.patterns)


class Replacement:
    """Turns a value into its marker or its keyed digest."""

    def __init__(self, marker: str, key: bytes | None = None, hex_chars: int = 16) -> None:
        self._marker = marker
        self._key = key
        self._hex_chars = hex_chars

    def text(self, value: str) -> str:
        if self._key is None:
            return self._marker
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return digest.hexdigest()[: self._hex_chars]

    def json_value(self, value: Any) -> str:
        if self._key is None:
            return self._marker
        if isinstance(value, str):
            return self.text(value)
        return self.text(orjson.dumps(value).decode())


class Redactor:
    """Applies the configured rules to one payload's text; raises RedactionError when it cannot."""

    def __init__(self, input_rules: SideRules, output_rules: SideRules, replacement: Replacement):
        self.input = input_rules
        self.output = output_rules
        self._replacement = replacement

    def rules(self, mode: str) -> SideRules:
        return self.input if mode == "INPUT" else self.output

    def apply(self, rules: SideRules, text: str | None, encoding: str) -> str:
        """The redacted text of a payload (``text`` is None when it is not valid UTF-8)."""
        if text is None:
            raise RedactionError("payload is not UTF-8 text")
        if encoding == "JSON" and (rules.json_paths or rules.patterns):
            return self._json(rules, text)
        if encoding == "CSV" and (rules.csv_columns or rules.patterns):
            return self._csv(rules, text)
        if encoding == "TEXT" and (rules.json_paths or rules.patterns):
            return self._stream(rules, text)
        raise RedactionError(f"no redaction rule reads a {encoding} payload")

    def text(self, rules: SideRules, text: str) -> str:
        """``text`` with every match of the side's patterns replaced."""
        replace = self._replacement.text
        for pattern in rules.patterns:
            text = pattern.sub(text, replace)
        return text

    def value(self, rules: SideRules, doc: Any) -> Any:
        """A parsed JSON document redacted (paths, then patterns in its strings); in place where
        it can be, so use the result."""
        replace = self._replacement.json_value
        for path in rules.json_paths:
            _replace_at(doc, path, replace)
        if rules.patterns:
            doc = self._strings(rules, doc)
        return doc

    def _strings(self, rules: SideRules, node: Any) -> Any:
        if isinstance(node, str):
            return self.text(rules, node)
        if isinstance(node, dict):
            for key, item in node.items():
                node[key] = self._strings(rules, item)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                node[i] = self._strings(rules, item)
        return node

    def _stream(self, rules: SideRules, text: str) -> str:
        """An event stream: SSE ``data:`` lines and NDJSON lines that are JSON are redacted as
        JSON; any other line takes the text patterns (JSON path rules alone cannot read it)."""
        out = []
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\r\n")
            end = line[len(body) :]
            prefix = ""
            if body.startswith("data:"):
                prefix, body = "data:", body[5:]
                if body.startswith(" "):
                    prefix, body = "data: ", body[1:]
            stripped = body.strip()
            if stripped[:1] in ("{", "["):
                try:
                    doc = orjson.loads(stripped)
                except orjson.JSONDecodeError:
                    doc = None
                if doc is not None:
                    out.append(prefix + orjson.dumps(self.value(rules, doc)).decode() + end)
                    continue
            if stripped in ("", "[DONE]") or (not prefix and body.startswith(":")):
                out.append(line)  # blank line, end marker, SSE comment
            elif rules.patterns:
                out.append(prefix + self.text(rules, body) + end)
            elif prefix or not body.startswith(("event:", "id:", "retry:")):
                raise RedactionError(
                    "an event-stream line is not JSON and no pattern rule reads it"
                )
            else:
                out.append(line)
        return "".join(out)

    def _json(self, rules: SideRules, text: str) -> str:
        try:
            docs = [orjson.loads(text)]
            lines = False
        except orjson.JSONDecodeError:
            parts = text.splitlines()
            try:
                docs = [orjson.loads(p) for p in parts if p.strip()]
            except orjson.JSONDecodeError:
                if rules.patterns and not rules.json_paths:
                    return self.text(rules, text)  # not JSON after all: still text
                raise RedactionError("payload is not JSON or JSON Lines") from None
            lines = True
            if not docs:
                raise RedactionError("payload is not JSON or JSON Lines") from None
        out = [orjson.dumps(self.value(rules, doc)).decode() for doc in docs]
        if not lines:
            return out[0]
        end = "\n" if text.endswith(("\n", "\r")) else ""
        return "\n".join(out) + end

    def _csv(self, rules: SideRules, text: str) -> str:
        newline = "\r\n" if "\r\n" in text else "\n"
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error as exc:
            raise RedactionError(f"payload is not CSV: {exc}") from None
        replace = self._replacement.text
        for row in rows:
            for col in rules.csv_columns:
                if col < len(row):
                    row[col] = replace(row[col])
            if rules.patterns:
                row[:] = [self.text(rules, cell) for cell in row]
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator=newline).writerows(rows)
        out = buf.getvalue()
        if not text.endswith(("\n", "\r")) and out.endswith(newline):
            out = out[: -len(newline)]
        return out


def build_redactor(cfg: RedactConfig) -> Redactor | None:
    """The configured redactor, or None without rules (then records cost nothing extra).

    Reads ``redact.hash_key_file``: call it before serving; a missing or short key is a
    ConfigError.
    """
    try:
        patterns = compile_patterns(tuple(cfg.patterns), cfg.regexes)
        rules_in = SideRules(
            tuple(compile_path(p) for p in cfg.input_json_paths),
            frozenset(cfg.input_csv_columns),
            patterns,
        )
        rules_out = SideRules(
            tuple(compile_path(p) for p in cfg.output_json_paths),
            frozenset(cfg.output_csv_columns),
            patterns,
        )
    except (ValueError, re.error) as exc:
        raise ConfigError(str(exc)) from None
    if not rules_in and not rules_out:
        return None
    key: bytes | None = None
    if cfg.replacement == "hash":
        key = cfg.hash_key.encode()
        if cfg.hash_key_file is not None:
            try:
                key = cfg.hash_key_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    f"redact.hash_key_file={str(cfg.hash_key_file)!r}: cannot read: {exc.strerror}"
                ) from None
        if len(key) < 16:
            raise ConfigError("the redact hash key is shorter than 16 bytes")
    return Redactor(rules_in, rules_out, Replacement(cfg.marker, key, cfg.hash_hex_chars))
