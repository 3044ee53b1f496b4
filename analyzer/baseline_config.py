"""The options of ``modeltap baseline``: one typed object, declared with the shared machinery.

Each field is an option of the command (its ``flag``) and an environment variable
``MODELTAP_BASELINE_<SECTION>_<FIELD>`` (e.g. ``MODELTAP_BASELINE_STORE_ENDPOINT_URL``); a flag
beats the variable. ``MODELTAP_ANALYZER_STORE_ENDPOINT_URL``, ``_REGION`` and ``_PATH_STYLE``, the
names of earlier releases, still count, below both. ``modeltap baseline --help-config`` prints
the table the README holds.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analyzer.baseline_job import BaselineStore, ColumnsConfig, Job, ReadConfig
from analyzer.registry import SECTIONS
from modeltap.core.errors import ConfigError
from modeltap.core.settings import env_overrides, flag_overrides, load, subtables

ENV_PREFIX = "MODELTAP_BASELINE_"
LEGACY_STORE_PREFIX = "MODELTAP_ANALYZER_STORE_"  # read for the store keys, below ENV_PREFIX's


def builder_tables() -> dict[str, type[Any]]:
    """Each registered section's baseline option tables (``Section.baseline``), in order."""
    return {
        name: table
        for section in SECTIONS
        if section.baseline is not None
        for name, table in section.baseline.tables.items()
    }


@dataclass(frozen=True)
class BaselineConfig:
    read: ReadConfig = ReadConfig()
    columns: ColumnsConfig = ColumnsConfig()
    tables: Mapping[str, Any] = subtables(builder_tables, "Each baseline builder's options.")
    store: BaselineStore = BaselineStore()

    def validate(self) -> None:
        for section in SECTIONS:
            if section.baseline is not None:
                section.baseline.validate(self.columns, self.tables)
        wanted = [s for s in SECTIONS if s.baseline is not None and s.baseline.wanted(self.tables)]
        if len(wanted) > 1 and any(s.baseline is not None and s.baseline.alone for s in wanted):
            raise ConfigError(
                f"the {' and '.join(s.name for s in wanted)} baselines: one kind of baseline "
                "at a time"
            )

    def job(self, inputs: tuple[str, ...], output: str, progress: str, quiet: bool) -> Job:
        return Job(
            inputs, output, self.read, self.columns, self.store, self.tables, progress, quiet
        )


def load_baseline_config(args: argparse.Namespace, environ: Mapping[str, str]) -> BaselineConfig:
    """The options parsed by ``add_arguments(parser, BaselineConfig)`` over the environment."""
    given = {
        f"store.{name.lower()}": (var, value)
        for var, value in environ.items()
        if var.startswith(LEGACY_STORE_PREFIX)
        and value.strip()  # empty: unset, as before
        and (name := var.removeprefix(LEGACY_STORE_PREFIX))
        in ("ENDPOINT_URL", "REGION", "PATH_STYLE")
    }
    given.update(env_overrides(BaselineConfig, ENV_PREFIX, environ))
    given.update(flag_overrides(args, BaselineConfig))
    return load(BaselineConfig, env_prefix=ENV_PREFIX, environ={}, overrides=given)
