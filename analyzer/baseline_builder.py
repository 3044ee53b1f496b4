"""The interface of a section's baseline builder (``Section.baseline``): its option tables of
``modeltap baseline`` (each field a flag and a ``MODELTAP_BASELINE_<TABLE>_<FIELD>`` variable),
whether the options ask for its baseline (and whether it may be asked for with another), the checks it needs of the shared options, and the
build. ``modeltap baseline`` (``analyzer.baseline_run``) builds the first one in registry order
that is wanted, else data quality's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from analyzer.baseline_job import ColumnsConfig, Job


class BaselineBuilder(Protocol):
    @property
    def tables(self) -> Mapping[str, type[Any]]:
        """Its option tables, by table name (settings dataclasses whose fields carry flags)."""
        ...

    @property
    def alone(self) -> bool:
        """Whether its baseline is built only alone (its inputs are no table the others read):
        asked for together with another one, ``modeltap baseline`` refuses."""
        ...

    def wanted(self, tables: Mapping[str, Any]) -> bool:
        """Whether the options (every builder's tables, by name) ask for this baseline."""
        ...

    def validate(self, columns: ColumnsConfig, tables: Mapping[str, Any]) -> None:
        """A ConfigError when it is wanted without what it needs (e.g. --label)."""
        ...

    def build(self, job: Job) -> int:
        """Build and write the baseline to ``job.output``; the exit status (0)."""
        ...
