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
