def read_rows(
    offsets: object, data: object, offset: int, length: int, key: bytes, /
) -> tuple[int, list[tuple[str, int, bytes | None, bytes, bytes | None]]] | None: ...
def read_envelopes(
    chunk: object, /
) -> (
    tuple[int, list[tuple[int, bytes | None, bytes, bytes]], list[tuple[int, bytes | None]]] | None
): ...
