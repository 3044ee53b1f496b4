"""The LLM baseline ``modeltap baseline --llm`` writes: statistics.json and constraints.json of
the descriptor table (the tabular formats, so the same checks read them) and llm.json (the
descriptor settings, so the monitor computes a window's descriptors as the baseline's were).

Inputs are JSON Lines of past exchanges (``{"request": ..., "response": ...}``) or capture
records, as files, directories (every ``*.jsonl``/``*.jsonl.gz`` below) or ``s3://`` /
``file://`` prefixes. Descriptors the inputs never have (no timing in request logs, no JSON
asked for) are left out of the baseline, and so not monitored.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from analyzer.baseline import profile
from analyzer.constraints import ConstraintOptions, suggest_constraints
from analyzer.errors import DataError
from analyzer.llm.descriptors import COLUMNS, NGRAM_COLUMNS, DescriptorSettings, descriptor_table
from analyzer.llm.exchange import Exchange, Unreadable, from_line
from analyzer.profile import Profile, ProfileConfig
from analyzer.statistics import profile_to_statistics
from modeltap.core.store import S3Settings, open_store

FORMAT_VERSION = 1
NGRAM_PVALUE = 0.01  # the n-gram columns: a chi-squared p-value below this is drift


@dataclass
class Read:
    """Exchanges read from inputs, and the lines that were none, by reason."""

    exchanges: list[Exchange] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.unreadable[reason] = self.unreadable.get(reason, 0) + 1

    def lines(self, data: bytes, name: str) -> None:
        if name.endswith(".gz") or data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise DataError(f"damaged gzip data: {exc}", file=name) from None
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                self.exchanges.append(from_line(orjson.loads(line)))
            except orjson.JSONDecodeError:
                self.skip("not_json")
            except Unreadable as exc:
                self.skip(exc.reason)


def _local_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file() and ".jsonl" in p.name)
    elif path.is_file():
        yield path
    else:
        raise DataError("no such file or directory", file=str(path))


async def _read_store(uri: str, store_config: S3Settings | None, read: Read) -> None:
    store = open_store(uri, store_config)
    try:
        async for info in store.list(""):
            read.lines(await store.get(info.key), info.key)
    finally:
        await store.close()


def read_inputs(inputs: Iterable[str], store_config: S3Settings | None = None) -> Read:
    """Every exchange of the inputs (files, directories, s3:// or file:// prefixes)."""
    read = Read()
    for item in inputs:
        if item.startswith(("s3://", "file://")):
            asyncio.run(_read_store(item, store_config, read))
        else:
            for path in _local_files(Path(item)):
                read.lines(path.read_bytes(), str(path))
    return read


def profile_config(columns: Iterable[str]) -> ProfileConfig:
    """Descriptor types are fixed, never inferred (a window of whole numbers stays Fractional)."""
    return ProfileConfig(type_overrides={c: COLUMNS[c] for c in columns})


def baseline_profile(table: pa.Table) -> Profile:
    """The descriptors' baseline profile, without the columns no exchange had."""
    kept = [c for c in table.column_names if table.column(c).null_count < table.num_rows]
    return profile(table.select(kept), config=profile_config(kept))


def llm_constraints(prof: Profile, options: ConstraintOptions | None = None) -> dict[str, Any]:
    """Suggested constraints, with the n-gram columns tested by chi-squared (no domain list:
    a bucket new to the window is drift evidence, not a data error)."""
    cons = suggest_constraints(prof, options)
    for feat in cons["features"]:
        if feat["name"] in NGRAM_COLUMNS:
            feat.pop("string_constraints", None)
            feat["monitoringConfigOverrides"] = {
                "categorical_drift_method": "ChiSquared",
                "categorical_comparison_threshold": NGRAM_PVALUE,
            }
    return cons


def build_llm_baseline(
    read: Read, settings: DescriptorSettings, options: ConstraintOptions | None = None
) -> dict[str, Any]:
    """statistics.json, constraints.json and llm.json of the exchanges, as documents."""
    if not read.exchanges:
        found = ", ".join(f"{n} {r}" for r, n in sorted(read.unreadable.items())) or "no lines"
        raise DataError(f"no OpenAI-compatible exchange in the inputs ({found})")
    prof = baseline_profile(descriptor_table(read.exchanges, settings))
    return {
        "statistics.json": profile_to_statistics(prof),
        "constraints.json": llm_constraints(prof, options),
        "llm.json": {
            "version": FORMAT_VERSION,
            "settings": settings.to_json(),
            "exchanges": len(read.exchanges),
            "unreadable": read.unreadable,
            "descriptors": list(prof.columns),
        },
    }
