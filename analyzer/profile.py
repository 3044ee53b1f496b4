"""The Profile: a mergeable summary of a tabular dataset, one ColumnProfile per column.

A Profile is a monoid. ``Profile.empty(config)`` is the identity, ``update(chunk)`` folds in a
chunk (an Arrow RecordBatch/Table or a mapping of column name to numpy array), ``merge`` combines
two profiles into the profile of the union; :mod:`analyzer.statistics` converts one to and from
SageMaker's statistics.json layout (with modeltap's exact state under a ``modeltap`` key, so
nothing is lost in the round trip). Every update is vectorised over the chunk: loops run over
columns and chunks only.

Invariants:
* ``sum(column.type_counts) == item_count`` for every column; a column absent from a chunk (or
  first seen in a later chunk) counts those rows as missing.
* A column's type is fixed (``fixed_type``) by a user override or by the baseline a profile is
  built against; otherwise it is inferred from the type counts when asked (``inferred_type``).
* Profiles built against the same baseline share bin edges, so their bin counts add exactly.
* Each part merges exactly, except the KLL sketch (within its rank error), the CPC estimate, and
  category counts beyond the cap (see ``analyzer.categorical``). String statistics of a column
  that showed its first non-numeric value late cover only the rows from then on
  (``text_values_missed`` > 0); the baseline builder recounts such columns in its second pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.categorical import DEFAULT_CAP, DEFAULT_CPC_LG_K, CategoricalSummary
from analyzer.errors import DataError, ProfileError
from analyzer.inference import NULL, STRING, InferredType, classify, infer_type
from analyzer.numeric import DEFAULT_BINS, DEFAULT_KLL_K, NumericSummary

ChunkLike: TypeAlias = pa.RecordBatch | pa.Table | Mapping[str, Any]


@dataclass(frozen=True)
class ProfileConfig:
    """How a profile is computed; stored in statistics.json and reused by profiles against it."""

    kll_k: int = DEFAULT_KLL_K
    """KLL sketch size: 2048 (SageMaker's Deequ) gives a 0.18% whole-CDF rank error."""
    n_bins: int = DEFAULT_BINS
    """Number of quantile-anchored bins (the baseline's quantiles at ranks i/n_bins are edges)."""
    category_cap: int = DEFAULT_CAP
    """Most distinct string values counted exactly per column; the rest become other_count."""
    cpc_lg_k: int = DEFAULT_CPC_LG_K
    """log2 of the CPC sketch size for distinct counts beyond the cap (12: ~1% error)."""
    mixed_type_threshold: float = 0.0
    """Share of String values above which a column is a String (0.0: SageMaker's rule)."""
    type_overrides: Mapping[str, InferredType] = field(default_factory=dict)
    """Types the user fixed by hand, by column name."""
    label: str | None = None
    """Name of the ground-truth label column, if any."""
    prediction: str | None = None
    """Name of the model output (prediction) column, if any."""

    def __post_init__(self) -> None:
        if not 8 <= self.kll_k <= 65535:
            raise ProfileError(f"kll_k must be within 8..65535, got {self.kll_k}")
        if self.n_bins < 1:
            raise ProfileError(f"n_bins must be at least 1, got {self.n_bins}")
        if self.category_cap < 1:
            raise ProfileError(f"category_cap must be at least 1, got {self.category_cap}")
        if not 4 <= self.cpc_lg_k <= 26:
            raise ProfileError(f"cpc_lg_k must be within 4..26, got {self.cpc_lg_k}")
        if not 0.0 <= self.mixed_type_threshold < 1.0:
            raise ProfileError("mixed_type_threshold must be within [0, 1)")

    def to_state(self) -> dict[str, Any]:
        return {
            "kll_k": self.kll_k,
            "n_bins": self.n_bins,
            "category_cap": self.category_cap,
            "cpc_lg_k": self.cpc_lg_k,
            "mixed_type_threshold": self.mixed_type_threshold,
            "type_overrides": {k: str(v) for k, v in self.type_overrides.items()},
            "label": self.label,
            "prediction": self.prediction,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ProfileConfig:
        kw = dict(state)
        kw["type_overrides"] = {k: InferredType(v) for k, v in kw.get("type_overrides", {}).items()}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in kw.items() if k in known})


class ColumnProfile:
    """Everything known about one column; see the module docstring for the invariants."""

    __slots__ = ("fixed_type", "name", "numeric", "strings", "text_values_missed", "type_counts")

    def __init__(
        self,
        name: str,
        config: ProfileConfig,
        *,
        fixed_type: InferredType | None = None,
        edges: npt.NDArray[np.float64] | None = None,
    ) -> None:
        self.name = name
        self.fixed_type = fixed_type
        self.type_counts = np.zeros(4, dtype=np.int64)
        self.numeric = NumericSummary(config.kll_k, edges)
        self.strings: CategoricalSummary | None = None
        self.text_values_missed = 0
        if fixed_type is InferredType.STRING:
            self.strings = CategoricalSummary(config.category_cap, config.cpc_lg_k)

    @property
    def rows(self) -> int:
        return int(self.type_counts.sum())

    @property
    def num_present(self) -> int:
        return int(self.type_counts[1:].sum())

    def inferred_type(self, threshold: float = 0.0) -> InferredType:
        return self.fixed_type or infer_type(self.type_counts, threshold)

    def add_missing(self, n: int) -> None:
        self.type_counts[NULL] += n

    def update(
        self, arr: pa.Array | pa.ChunkedArray, config: ProfileConfig, *, utf8_checked: bool = False
    ) -> None:
        """Fold one chunk of this column in."""
        fixed = self.fixed_type
        want_text = fixed is None or fixed is InferredType.STRING
        cls = classify(arr, name=self.name, want_text=want_text, utf8_checked=utf8_checked)
        present_before = self.num_present
        self.type_counts += cls.counts
        if fixed is not InferredType.STRING:
            self.numeric.update(cls.values)
        if fixed is InferredType.STRING:
            self._strings(config).update(cls.text if cls.text is not None else _as_text(arr))
        elif (
            fixed is None
            and cls.text is not None
            and (self.strings is not None or cls.counts[STRING] > 0)
        ):
            if self.strings is None:
                self.text_values_missed = present_before
            self._strings(config).update(cls.text)
        elif fixed is None and self.strings is not None:
            # A typed numeric chunk after text ones (a JSON field read as text from a later
            # block on, files of different types): count its values as text too, as the same
            # values in a CSV column would be.
            self.strings.update(_as_text(arr))

    def _strings(self, config: ProfileConfig) -> CategoricalSummary:
        if self.strings is None:
            self.strings = CategoricalSummary(config.category_cap, config.cpc_lg_k)
        return self.strings

    def restart_strings(self, config: ProfileConfig) -> None:
        """Drop partial string statistics before a full recount (baseline second pass)."""
        self.strings = CategoricalSummary(config.category_cap, config.cpc_lg_k)
        self.text_values_missed = 0

    def recount(self, arr: pa.Array | pa.ChunkedArray, *, bins: bool, strings: bool) -> None:
        """Second pass over a chunk: bin counts and/or string statistics only."""
        if bins:
            self.numeric.update_bins(classify(arr, name=self.name, want_text=False).values)
        if strings and self.strings is not None:
            self.strings.update(_as_text(arr))

    def merge(self, other: ColumnProfile, config: ProfileConfig) -> ColumnProfile:
        if self.fixed_type != other.fixed_type:
            raise ProfileError(
                f"column {self.name!r}: cannot merge fixed types {self.fixed_type} and {other.fixed_type}"
            )
        out = ColumnProfile(self.name, config, fixed_type=self.fixed_type)
        out.type_counts = self.type_counts + other.type_counts
        out.numeric = self.numeric.merge(other.numeric)
        if self.strings is None and other.strings is None:
            out.strings = None
        elif self.strings is not None and other.strings is not None:
            out.strings = self.strings.merge(other.strings)
            out.text_values_missed = self.text_values_missed + other.text_values_missed
        else:
            have = self if self.strings is not None else other
            lack = other if have is self else self
            assert have.strings is not None
            out.strings = have.strings.merge(
                CategoricalSummary(have.strings.cap, have.strings.lg_k)
            )
            out.text_values_missed = have.text_values_missed + lack.num_present
        return out


def _as_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
    return arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())


def to_record_batch(data: ChunkLike) -> pa.RecordBatch | pa.Table:
    """An Arrow batch from a batch, a table, or a mapping of column name to array-like."""
    if isinstance(data, pa.RecordBatch | pa.Table):
        return data
    arrays = []
    for name, values in data.items():
        if isinstance(values, pa.Array | pa.ChunkedArray):
            arrays.append(values)
            continue
        try:
            arrays.append(pa.array(values, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise DataError(
                f"cannot read the values as one type ({exc})", column=str(name)
            ) from exc
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        raise DataError(f"the columns have different lengths ({sorted(lengths)})")
    return pa.table(arrays, names=[str(k) for k in data])


class Profile:
    """Mergeable statistics of a dataset (see the module docstring)."""

    def __init__(self, config: ProfileConfig | None = None) -> None:
        self.config = config or ProfileConfig()
        self.columns: dict[str, ColumnProfile] = {}
        self.item_count = 0

    @classmethod
    def empty(
        cls, config: ProfileConfig | None = None, *, baseline: Profile | None = None
    ) -> Profile:
        """The identity profile; against a baseline it reuses its columns, types and bin edges."""
        if baseline is None:
            return cls(config)
        out = cls(baseline.config if config is None else config)
        for name, col in baseline.columns.items():
            t = baseline.inferred_type(name)
            edges = col.numeric.edges if t.is_numeric else None
            out.columns[name] = ColumnProfile(name, out.config, fixed_type=t, edges=edges)
        return out

    def _new_column(self, name: str) -> ColumnProfile:
        col = ColumnProfile(name, self.config, fixed_type=self.config.type_overrides.get(name))
        col.add_missing(self.item_count)
        self.columns[name] = col
        return col

    def update(self, data: ChunkLike, *, utf8_checked: bool = False) -> None:
        """Fold one chunk in (vectorised per column). ``utf8_checked``: its text columns are known
        to be UTF-8 (the capture readers' tables), so they are not checked again."""
        batch = to_record_batch(data)
        names = batch.schema.names
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise DataError("the column name appears more than once", column=dup)
        for name, arr in zip(names, batch.columns, strict=True):
            col = self.columns.get(name) or self._new_column(name)
            col.update(arr, self.config, utf8_checked=utf8_checked)
        present = set(names)
        for name, col in self.columns.items():
            if name not in present:
                col.add_missing(batch.num_rows)
        self.item_count += batch.num_rows

    def inferred_type(self, name: str) -> InferredType:
        return self.columns[name].inferred_type(self.config.mixed_type_threshold)

    def inferred_types(self) -> dict[str, InferredType]:
        return {name: self.inferred_type(name) for name in self.columns}

    def merge(self, other: Profile) -> Profile:
        """The profile of the union of both inputs (a new object; neither input changes)."""
        if replace(self.config, label=None, prediction=None) != replace(
            other.config, label=None, prediction=None
        ):
            raise ProfileError("cannot merge profiles computed with different settings")
        out = Profile(self.config)
        out.item_count = self.item_count + other.item_count
        for name in [*self.columns, *(n for n in other.columns if n not in self.columns)]:
            a = self.columns.get(name) or _missing_column(
                name, self.item_count, other.columns[name], self.config
            )
            b = other.columns.get(name) or _missing_column(name, other.item_count, a, self.config)
            out.columns[name] = a.merge(b, self.config)
        return out


def _missing_column(
    name: str, rows: int, like: ColumnProfile, config: ProfileConfig
) -> ColumnProfile:
    """A column of ``rows`` missing values shaped like ``like`` (same type and edges)."""
    col = ColumnProfile(name, config, fixed_type=like.fixed_type, edges=like.numeric.edges)
    col.add_missing(rows)
    return col
