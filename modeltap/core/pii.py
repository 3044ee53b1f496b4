"""The built-in personal-data patterns: what the sidecar redacts and the analyzer counts.

One definition, so a pattern the sidecar replaces in captured text is the same one the analyzer's
LLM section counts in prompts and answers (``redact.patterns`` names them: ``card``, ``phone``,
``email``). Python ``re`` syntax; a ``card`` match is a card number only when its digits pass
the Luhn check (:func:`luhn_ok`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Card numbers: 13-19 digits, single spaces or dashes between them; a match must pass Luhn.
_CARD = r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])"
_PHONE = (
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,3}"
    r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|\d{3}[ .-]\d{3}[ .-]\d{4})(?![\w])"
)
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
BUILTIN_PATTERNS = {"card": _CARD, "phone": _PHONE, "email": _EMAIL}


def luhn_ok(digits: str) -> bool:
    """The Luhn check of a card number's digits (what makes a digit run a plausible card)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class TextPattern:
    """One pattern found in free text; ``card`` matches must also pass the Luhn check."""

    name: str
    regex: re.Pattern[str]

    def _is_card(self, match: re.Match[str]) -> bool:
        return luhn_ok(re.sub(r"[ -]", "", match.group()))

    def sub(self, text: str, replace: Callable[[str], str]) -> str:
        if self.name == "card":

            def card(m: re.Match[str]) -> str:
                return replace(m.group()) if self._is_card(m) else m.group()

            return self.regex.sub(card, text)
        return self.regex.sub(lambda m: replace(m.group()), text)

    def count(self, text: str) -> int:
        """How many times the pattern occurs in ``text`` (cards: Luhn-valid runs only)."""
        if self.name == "card":
            return sum(1 for m in self.regex.finditer(text) if self._is_card(m))
        return sum(1 for _ in self.regex.finditer(text))


def compile_patterns(names: tuple[str, ...], regexes: tuple[str, ...]) -> tuple[TextPattern, ...]:
    """The configured patterns, built-ins first (cards before phones: a card is a digit run)."""
    out = [TextPattern(n, re.compile(BUILTIN_PATTERNS[n])) for n in BUILTIN_PATTERNS if n in names]
    out += [TextPattern(f"regex:{r}", re.compile(r)) for r in regexes]
    return tuple(out)
