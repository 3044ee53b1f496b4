from typing import Any

import numpy as np
from typing_extensions import Buffer

_Array = Buffer | np.ndarray[Any, Any]

def classify_text(
    validity: Buffer | None,
    offsets: Buffer,
    data: Buffer | None,
    offset: int,
    length: int,
    wide: bool,
    values: _Array,
    kinds: _Array | None,
    /,
) -> tuple[int, int, int, int]: ...
def set_null_values(values: list[bytes], /) -> None: ...
def split_fields(chunk: Buffer, width: int, lines: int, starts: _Array, /) -> bool: ...
def field_is(
    chunk: Buffer, starts: _Array, width: int, lines: int, j: int, text: Buffer, /
) -> bool: ...
def field_columns(
    chunk: Buffer,
    starts: _Array,
    width: int,
    lines: int,
    lo: int,
    hi: int,
    head: Buffer,
    tail: Buffer,
    nulls: int,
    /,
) -> list[tuple[bytes, bytes, bytes | None, int]] | None: ...
def byte_counts(chunk: Buffer, /) -> tuple[int, int, int, int]: ...
def plain_times(
    validity: Buffer | None,
    offsets: Buffer,
    data: Buffer | None,
    offset: int,
    length: int,
    out: _Array,
    done: _Array,
    /,
) -> None: ...
def field_is_string(
    chunk: Buffer, starts: _Array, width: int, lines: int, j: int, prefix: Buffer, suffix: Buffer, /
) -> bool: ...
