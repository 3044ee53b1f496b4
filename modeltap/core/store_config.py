"""How to reach an object store: the ``[store]`` keys every reader and writer shares.

The monitor's ``[store]`` and the baseline's ``--store-*`` options are exactly these. The
sidecar's ``[store]`` adds its upload keys (``sidecar.config.StoreConfig``, a subclass), among
them the S3 client's tuning, which a reader leaves at the defaults of the properties below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting

SSE = Literal["", "AES256", "aws:kms"]


@dataclass(frozen=True)
class StoreConnection:
    region: str = setting("us-east-1", "S3 region.")
    endpoint_url: str = setting("", "S3 endpoint URL for S3-compatible stores (empty: AWS).")
    path_style: bool = setting(False, "Use path-style S3 addressing (most S3-compatible stores).")
    sse: SSE = setting(
        "", "Server-side encryption: '' (bucket default), AES256 (SSE-S3) or aws:kms (SSE-KMS)."
    )
    kms_key_id: str = setting("", "KMS key id/ARN/alias for SSE-KMS (SageMaker KmsKeyId).")

    def validate(self) -> None:
        if self.kms_key_id and self.sse != "aws:kms":
            raise ConfigError("store.kms_key_id is set but store.sse is not 'aws:kms'")

    # The S3 client's tuning: settings of the sidecar's StoreConfig, these defaults elsewhere.
    @property
    def max_concurrency(self) -> int:
        """Objects moved at once (the client's connection pool is twice this, at least 10)."""
        return 4

    @property
    def multipart_threshold_bytes(self) -> int:
        """Objects at least this large go up as multipart uploads."""
        return 64 * 1024 * 1024

    @property
    def retry_base_seconds(self) -> float:
        """First delay between attempts of the start-up check."""
        return 0.5

    @property
    def retry_max_seconds(self) -> float:
        """Longest delay between attempts of the start-up check."""
        return 30.0

    @property
    def check_attempts(self) -> int:
        """Attempts of the start-up check while the store answers with a transient error."""
        return 5
