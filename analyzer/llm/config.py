"""``[endpoints.llm]``: the LLM section's settings, and what its runs read of them (``load``: the
LLM baseline read, its descriptor settings parsed).

An endpoint with this table may go without a data baseline (``stands_alone``: data quality is
then not configured, and no tabular profile of the window is made); the table reads captured
exchanges only (``reads_captures``: never on a batch dataset)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from analyzer.baseline_files import check_constraints_file, read_json_files, read_profile
from analyzer.errors import BaselineFormatError
from analyzer.llm.descriptors import DescriptorSettings
from analyzer.llm.run import LLMTarget
from analyzer.section import LoadInput
from modeltap.core.settings import REQUIRED, setting
from modeltap.core.store import split_destination

log = logging.getLogger("analyzer.monitor")


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """``[endpoints.llm]``: descriptors of OpenAI-compatible exchanges (prompts and answers)."""

    stands_alone: ClassVar[bool] = True  # section_config.stands_alone
    reads_captures: ClassVar[bool] = True  # section_config.reads_captures

    baseline: str = setting(
        REQUIRED,
        "`modeltap baseline --llm` output (statistics.json, constraints.json and llm.json).",
    )

    def validate(self) -> None:
        split_destination(self.baseline)


async def load_llm(c: LLMConfig, source: LoadInput) -> LLMTarget:
    stats, constraints, llm = await read_json_files(
        c.baseline, ("statistics.json", "constraints.json", "llm.json"), source.store
    )
    base = c.baseline.rstrip("/")
    profile = read_profile(stats, f"{base}/statistics.json")
    for warning in check_constraints_file(constraints, f"{base}/constraints.json", strict=False):
        log.warning("%s", warning)
    try:
        settings = DescriptorSettings.from_json(
            llm.get("settings") if isinstance(llm, dict) else None
        )
    except (ValueError, TypeError) as exc:
        raise BaselineFormatError(f"{base}/llm.json: settings: {exc}") from None
    return LLMTarget(profile, constraints, settings, base)
