"""The descriptor table: one row per exchange, the columns the LLM section profiles and checks.

Records are parsed one by one (``analyzer.llm.exchange``); the columns are then computed over
the whole window at once where the work allows: character counts and refusal matches with Arrow
compute kernels over the text columns, the Unicode script mix with one numpy lookup over the code
points of every text, rates with numpy. Personal-data patterns (Python ``re`` with look-arounds
and the Luhn check, ``modeltap.core.pii``) and the n-gram draw run per text.

Content drift without embeddings: each prompt and each completion contributes ONE word n-gram,
drawn reproducibly (seeded by the text's hash), hashed into ``ngram_buckets`` buckets: the
columns ``prompt_ngram`` / ``completion_ngram`` hold bucket labels and are tested like any
categorical feature (chi-squared homogeneity with sparse cells pooled). One draw per exchange
keeps the rows independent, which the test assumes; counting every n-gram of a text would count
one exchange many times and flag clean traffic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.inference import InferredType
from analyzer.llm.exchange import Exchange
from modeltap.core.pii import BUILTIN_PATTERNS, compile_patterns

# Refusals as guarded models word them (RE2 syntax, matched case-insensitively in the answer's
# first REFUSAL_SPAN characters).
DEFAULT_REFUSAL_PATTERNS = (
    r"\bI(?:'|\x{2019})?m sorry,? but\b|\bI am sorry,? but\b",
    r"\bI (?:can(?:'|\x{2019})?t|cannot|won(?:'|\x{2019})?t|will not) "
    r"(?:help|assist|comply|provide|do that|answer)",
    r"\bI(?:(?:'|\x{2019})m| am) (?:not able|unable) to (?:help|assist|comply|provide)",
    r"\bas an AI\b",
    r"\bI must decline\b",
)
REFUSAL_SPAN = 400

INTEGRAL, FRACTIONAL, STRING = InferredType.INTEGRAL, InferredType.FRACTIONAL, InferredType.STRING
COLUMNS: dict[str, InferredType] = {
    "prompt_chars": INTEGRAL,
    "completion_chars": INTEGRAL,
    "input_tokens": INTEGRAL,
    "output_tokens": INTEGRAL,
    "message_count": INTEGRAL,
    "model": STRING,
    "temperature": FRACTIONAL,
    "max_tokens": INTEGRAL,
    "finish_reason": STRING,
    "time_to_first_token_ms": FRACTIONAL,
    "tokens_per_second": FRACTIONAL,
    "refusal": INTEGRAL,
    "json_valid": INTEGRAL,
    "prompt_script": STRING,
    "completion_script": STRING,
    "prompt_pii_hits": INTEGRAL,
    "completion_pii_hits": INTEGRAL,
    "prompt_ngram": STRING,
    "completion_ngram": STRING,
}
NGRAM_COLUMNS = ("prompt_ngram", "completion_ngram")

# Letters by script: (first code point, last code point, script); gaps are not letters.
_SCRIPT_RANGES = (
    (0x41, 0x5A, "Latin"), (0x61, 0x7A, "Latin"), (0xC0, 0x24F, "Latin"),
    (0x370, 0x3FF, "Greek"), (0x400, 0x52F, "Cyrillic"), (0x530, 0x58F, "Armenian"),
    (0x590, 0x5FF, "Hebrew"), (0x600, 0x6FF, "Arabic"), (0x750, 0x77F, "Arabic"),
    (0x900, 0x97F, "Devanagari"), (0x980, 0x9FF, "Bengali"), (0xE00, 0xE7F, "Thai"),
    (0x1100, 0x11FF, "Hangul"), (0x1E00, 0x1EFF, "Latin"), (0x3040, 0x30FF, "CJK"),
    (0x3130, 0x318F, "Hangul"), (0x3400, 0x4DBF, "CJK"), (0x4E00, 0x9FFF, "CJK"),
    (0xAC00, 0xD7AF, "Hangul"), (0xF900, 0xFAFF, "CJK"),
)  # fmt: skip
SCRIPTS = tuple(sorted({s for _, _, s in _SCRIPT_RANGES}))
DOMINANT_SHARE = 0.8  # a text is "Mixed" when no script has this share of its letters
_STARTS = np.array([a for a, _, _ in _SCRIPT_RANGES], dtype=np.int64)
_ENDS = np.array([b for _, b, _ in _SCRIPT_RANGES], dtype=np.int64)
_IDS = np.array([SCRIPTS.index(s) for _, _, s in _SCRIPT_RANGES], dtype=np.int64)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DescriptorSettings:
    """How descriptors are computed; chosen when the baseline is built and stored with it
    (llm.json), so the monitor computes the window's exactly as the baseline's."""

    refusal_patterns: tuple[str, ...] = DEFAULT_REFUSAL_PATTERNS
    pii_patterns: tuple[str, ...] = tuple(BUILTIN_PATTERNS)
    ngram: int = 2
    ngram_buckets: int = 64

    def __post_init__(self) -> None:
        if not 1 <= self.ngram <= 5:
            raise ValueError(f"ngram must be within 1..5, got {self.ngram}")
        if not 2 <= self.ngram_buckets <= 4096:
            raise ValueError(f"ngram_buckets must be within 2..4096, got {self.ngram_buckets}")
        unknown = [p for p in self.pii_patterns if p not in BUILTIN_PATTERNS]
        if unknown:
            raise ValueError(
                f"unknown PII pattern(s) {unknown} (known: {', '.join(BUILTIN_PATTERNS)})"
            )
        for p in self.refusal_patterns:
            try:  # RE2, as Arrow runs it: one clear line for a pattern it cannot compile
                pc.match_substring_regex(pa.array(["x"]), pattern=p, ignore_case=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"refusal pattern {p!r}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {"refusal_patterns": list(self.refusal_patterns),
                "pii_patterns": list(self.pii_patterns), "ngram": self.ngram,
                "ngram_buckets": self.ngram_buckets}  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> DescriptorSettings:
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
        return cls(
            refusal_patterns=tuple(str(p) for p in doc.get("refusal_patterns", ())),
            pii_patterns=tuple(str(p) for p in doc.get("pii_patterns", ())),
            ngram=int(doc.get("ngram", 2)),
            ngram_buckets=int(doc.get("ngram_buckets", 64)),
        )


def _strings(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, pa.string())


def _ints(values: Sequence[int | None]) -> pa.Array:
    return pa.array(values, pa.int64())


def _floats(values: Sequence[float | None]) -> pa.Array:
    return pa.array(values, pa.float64())


def scripts(texts: pa.Array) -> pa.Array:
    """Each text's dominant script of letters (``Mixed`` below :data:`DOMINANT_SHARE`, ``none``
    without letters, null for a null text): one lookup over every code point of the column."""
    n = len(texts)
    filled = texts.fill_null("")
    lengths = pc.utf8_length(filled).to_numpy(zero_copy_only=False).astype(np.int64)
    joined = "".join(filled.to_pylist()).encode("utf-32-le")
    points = np.frombuffer(joined, dtype=np.uint32).astype(np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    at = np.searchsorted(_STARTS, points, side="right") - 1
    letter = (at >= 0) & (points <= _ENDS[np.maximum(at, 0)])
    k = len(SCRIPTS)
    counts = np.bincount(rows[letter] * k + _IDS[at[letter]], minlength=n * k).reshape(n, k)
    total = counts.sum(axis=1)
    top = counts.argmax(axis=1)
    share = counts[np.arange(n), top] / np.maximum(total, 1)
    names = np.array(SCRIPTS, dtype=object)[top]
    names[share < DOMINANT_SHARE] = "Mixed"
    names[total == 0] = "none"
    names[~texts.is_valid().to_numpy(zero_copy_only=False)] = None
    return pa.array(list(names), pa.string())


def _bucket(text: str, n: int, buckets: int) -> str | None:
    words = _WORD.findall(text.lower())
    if not words:
        return None
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    at = seed % max(1, len(words) - n + 1)  # one of the text's n-grams (all its words if fewer)
    gram = " ".join(words[at : at + n])
    h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
    return f"h{h % buckets:04d}"


def descriptor_table(exchanges: Sequence[Exchange], settings: DescriptorSettings) -> pa.Table:
    """The descriptor columns (:data:`COLUMNS`) of ``exchanges``, one row each."""
    prompts = _strings([e.prompt for e in exchanges])
    completions = _strings([e.completion for e in exchanges])
    refusal_regex = "|".join(f"(?:{p})" for p in settings.refusal_patterns) or "(?!)"
    head = pc.utf8_slice_codeunits(completions, 0, REFUSAL_SPAN)
    refusal = (
        pc.match_substring_regex(head, pattern=refusal_regex, ignore_case=True)
        if settings.refusal_patterns
        else pc.if_else(completions.is_valid(), False, pa.scalar(None, pa.bool_()))
    )
    tpot = _floats([e.tpot_ms for e in exchanges]).to_numpy(zero_copy_only=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        tps = np.where(tpot > 0, 1000.0 / tpot, np.nan)
    pii = compile_patterns(settings.pii_patterns, ())

    def hits(text: str | None) -> int | None:
        return None if text is None else sum(p.count(text) for p in pii)

    def valid_json(e: Exchange) -> int | None:
        if not e.json_asked or e.completion is None:
            return None
        try:
            orjson.loads(e.completion)
        except orjson.JSONDecodeError:
            return 0
        return 1

    n, buckets = settings.ngram, settings.ngram_buckets
    columns: dict[str, pa.Array] = {
        "prompt_chars": pc.utf8_length(prompts).cast(pa.int64()),
        "completion_chars": pc.utf8_length(completions).cast(pa.int64()),
        "input_tokens": _ints([e.input_tokens for e in exchanges]),
        "output_tokens": _ints([e.output_tokens for e in exchanges]),
        "message_count": _ints([e.message_count for e in exchanges]),
        "model": _strings([e.model for e in exchanges]),
        "temperature": _floats([e.temperature for e in exchanges]),
        "max_tokens": _ints([e.max_tokens for e in exchanges]),
        "finish_reason": _strings(
            [None if e.completion is None else (e.finish_reason or "none") for e in exchanges]
        ),
        "time_to_first_token_ms": _floats([e.ttft_ms for e in exchanges]),
        "tokens_per_second": pa.array(tps, pa.float64(), from_pandas=True),
        "refusal": refusal.cast(pa.int64()),
        "json_valid": _ints([valid_json(e) for e in exchanges]),
        "prompt_script": scripts(prompts),
        "completion_script": scripts(completions),
        "prompt_pii_hits": _ints([hits(e.prompt) for e in exchanges]),
        "completion_pii_hits": _ints([hits(e.completion) for e in exchanges]),
        "prompt_ngram": _strings([_bucket(e.prompt, n, buckets) for e in exchanges]),
        "completion_ngram": _strings(
            [None if e.completion is None else _bucket(e.completion, n, buckets) for e in exchanges]
        ),
    }
    return pa.table(columns)
