from typing_extensions import Buffer

def classify_text(
    validity: Buffer | None,
    offsets: Buffer,
    data: Buffer | None,
    offset: int,
    length: int,
    wide: bool,
    values: Buffer,
    kinds: Buffer | None,
    /,
) -> tuple[int, int, int, int]: ...
def set_null_values(values: list[bytes], /) -> None: ...
def split_fields(chunk: Buffer, width: int, lines: int, starts: Buffer, /) -> bool: ...
def field_is(
    chunk: Buffer, starts: Buffer, width: int, lines: int, j: int, text: Buffer, /
) -> bool: ...
def field_columns(
    chunk: Buffer,
    starts: Buffer,
    width: int,
    lines: int,
    lo: int,
    hi: int,
    head: Buffer,
    tail: Buffer,
    nulls: int,
    /,
) -> list[tuple[bytes, bytes, bytes | None, int]] | None: ...
