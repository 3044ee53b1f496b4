from collections.abc import Callable
from typing import Any

Alloc = Callable[[int], Any]  # pyarrow.allocate_buffer

def read_rows(
    offsets: object, data: object, offset: int, length: int, key: bytes, alloc: Alloc, /
) -> tuple[int, list[tuple[str, int, Any, Any, Any]]] | None: ...
def read_envelopes(
    chunk: object, alloc: Alloc, /
) -> tuple[int, list[tuple[int, Any, Any, Any]], list[tuple[int, Any]]] | None: ...
