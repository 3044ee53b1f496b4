"""The LLM baseline's builder (``modeltap baseline --llm``): the descriptors of past exchanges
(statistics.json, constraints.json) and the descriptor settings (llm.json)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analyzer.baseline import dumps, write_documents
from analyzer.baseline_job import ColumnsConfig, Job, option_table
from analyzer.data_quality.baseline import ConstraintsOptions, constraint_options
from analyzer.llm.baseline import build_llm_baseline, read_inputs
from analyzer.llm.descriptors import DEFAULT_REFUSAL_PATTERNS, DescriptorSettings
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


@dataclass(frozen=True)
class LLMOptions:
    """LLM prompts and answers

    With --llm the inputs are JSON Lines of past OpenAI-compatible exchanges
    ({"request": ..., "response": ...}) or capture records: the output is the LLM baseline
    (statistics.json and constraints.json of the exchanges' descriptors, llm.json of the settings)
    that `modeltap monitor`'s [endpoints.llm] points at."""

    enabled: bool = setting(False, "Build the LLM baseline.", flag="--llm")
    refusal_patterns: tuple[str, ...] = setting(
        (),
        "A refusal in an answer's first 400 characters (RE2 syntax, case-insensitive; "
        "repeatable; default: common English refusals).",
        flag="--llm-refusal-pattern",
        metavar="REGEX",
        repeat=True,
    )
    pii_patterns: tuple[str, ...] = setting(
        ("card", "phone", "email"),
        "Personal-data patterns counted in prompts and answers (card, phone, email).",
        flag="--llm-pii-patterns",
        metavar="A,B",
    )
    ngram: int = setting(
        2, "Words per n-gram of the content-drift signal.", min=1, max=5, flag="--llm-ngram"
    )
    ngram_buckets: int = setting(
        64,
        "Hash buckets of the content-drift n-grams.",
        min=2,
        max=4096,
        flag="--llm-ngram-buckets",
    )

    def descriptor_settings(self) -> DescriptorSettings:
        try:
            return DescriptorSettings(
                refusal_patterns=self.refusal_patterns or DEFAULT_REFUSAL_PATTERNS,
                pii_patterns=self.pii_patterns,
                ngram=self.ngram,
                ngram_buckets=self.ngram_buckets,
            )
        except ValueError as exc:
            raise ConfigError(f"--llm: {exc}") from None

    def validate(self) -> None:
        if self.enabled:
            self.descriptor_settings()


def llm_options(tables: Mapping[str, Any]) -> LLMOptions:
    return option_table(tables, "llm", LLMOptions)


class LLMBaseline:
    tables: Mapping[str, type[Any]] = {"llm": LLMOptions}
    alone = True  # its inputs are exchanges, not a table: no other baseline beside it

    def wanted(self, tables: Mapping[str, Any]) -> bool:
        return llm_options(tables).enabled

    def validate(self, columns: ColumnsConfig, tables: Mapping[str, Any]) -> None:
        return None

    def build(self, job: Job) -> int:
        return run_llm(job)


def run_llm(job: Job) -> int:
    """The LLM baseline of past exchanges (JSON Lines of request/response pairs or records)."""
    read = read_inputs(job.inputs, job.store)
    options = constraint_options(job.table("constraints", ConstraintsOptions))
    docs = build_llm_baseline(read, llm_options(job.tables).descriptor_settings(), options)
    names = write_documents(
        job.output, {k: dumps(v) for k, v in docs.items()}, store_config=job.store
    )
    if not job.quiet:
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(read.unreadable.items()))
        print(
            f"{len(read.exchanges):,} exchanges, {len(docs['llm.json']['descriptors'])} "
            f"descriptors" + (f" (skipped: {skipped})" if skipped else ""),
            file=sys.stderr,
        )
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


LLM_BASELINE = LLMBaseline()
