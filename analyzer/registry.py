"""The monitoring sections a run knows, in the order they run and are reported, and the
comparison stages that run after every target of a window ran.

Adding a kind: a package with a ``Section`` (``analyzer.section``) and one line here; a comparison
across runs: a ``Comparison`` (``analyzer.comparison``) and one line in ``COMPARISONS``.
"""

from __future__ import annotations

from typing import Any

from analyzer.attribution.section import ATTRIBUTION
from analyzer.bias.section import BIAS
from analyzer.comparison import Comparison
from analyzer.data_quality.section import DATA
from analyzer.llm.section import LLM
from analyzer.quality.section import QUALITY
from analyzer.section import Section
from analyzer.variants.stage import VARIANTS

SECTIONS: list[Section[Any]] = [DATA, QUALITY, BIAS, ATTRIBUTION, LLM]
COMPARISONS: list[Comparison[Any]] = [VARIANTS]


def register(section: Section[Any]) -> None:
    """Add a section after the built-in ones (a plug-in, or a test's toy section)."""
    if any(s.name == section.name for s in SECTIONS):
        raise ValueError(f"a section named {section.name!r} is already registered")
    SECTIONS.append(section)


def unregister(name: str) -> None:
    SECTIONS[:] = [s for s in SECTIONS if s.name != name]


def section_named(name: str) -> Section[Any] | None:
    return next((s for s in SECTIONS if s.name == name), None)


def register_comparison(stage: Comparison[Any]) -> None:
    """Add a comparison stage after the built-in ones."""
    if any(c.name == stage.name for c in COMPARISONS):
        raise ValueError(f"a comparison named {stage.name!r} is already registered")
    COMPARISONS.append(stage)
