"""The monitoring sections a run knows, in the order they run and are reported.

Adding a kind: a package with a ``Section`` (``analyzer.section``) and one line here.
"""

from __future__ import annotations

from typing import Any

from analyzer.attribution.section import ATTRIBUTION
from analyzer.bias.section import BIAS
from analyzer.llm.section import LLM
from analyzer.quality.section import QUALITY
from analyzer.section import Section

SECTIONS: list[Section[Any]] = [QUALITY, BIAS, ATTRIBUTION, LLM]


def register(section: Section[Any]) -> None:
    """Add a section after the built-in ones (a plug-in, or a test's toy section)."""
    if any(s.name == section.name for s in SECTIONS):
        raise ValueError(f"a section named {section.name!r} is already registered")
    SECTIONS.append(section)


def unregister(name: str) -> None:
    SECTIONS[:] = [s for s in SECTIONS if s.name != name]


def section_named(name: str) -> Section[Any] | None:
    return next((s for s in SECTIONS if s.name == name), None)
