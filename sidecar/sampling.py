"""The sampling decision: random per request, or consistent per inference id.

With ``inference_id`` sampling a request carrying an id is captured when a stable 64-bit hash of the
id falls below the sampling fraction, so a retried or replayed request (and the same id arriving at
any replica) gets the same decision.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

_SCALE = float(2**64)


class Sampler:
    """Decides whether a request is captured; cheap enough for the request path."""

    def __init__(
        self, percent: float, by_inference_id: bool, rand: Callable[[], float] = random.random
    ) -> None:
        self._fraction = percent / 100.0
        self._by_id = by_inference_id
        self._rand = rand
        self.always = percent >= 100.0
        self.never = percent <= 0.0

    def sampled(self, inference_id: str | None) -> bool:
        if self.never:
            return False
        if self.always:
            return True
        if self._by_id and inference_id:
            return hash_fraction(inference_id) < self._fraction
        return self._rand() < self._fraction


def hash_fraction(inference_id: str) -> float:
    """Map an id to [0, 1) by the first 8 bytes of its BLAKE2b digest (stable across processes)."""
    digest = hashlib.blake2b(inference_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE
